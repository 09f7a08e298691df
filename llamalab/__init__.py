"""llamalab: explore open-weight LLMs on your own machine — estimate, load, quantize, measure.

    import llamalab
    llamalab.estimate("llama-3.1-8b", "gptq-4bit", context=8192)
    m = llamalab.load()                      # the embedded SmolLM2-135M-Instruct, offline
    m.generate("What is the capital of France?")

Importing llamalab does not import torch; loading a model does.
"""
from .catalog import GPU, ModelCard, Scheme, card, gpu, gpus, models, scheme
from .errors import (BackendMissing, InvalidSetting, LlamalabError, ModelNotCached, NotEnoughMemory,
                     PromptTooLong, SchemeUnavailable, UnknownHardware, UnknownModel, UnknownScheme)
from .estimate import Estimate, Plan, best_scheme, estimate, max_context, plan, requirements_table, roofline
from .hardware import Hardware, hardware
from .monitor import Monitor, Sample
from .runtime import Engine, Generation, LoadedModel, capabilities, load, register_backend, schemes
from .quantize import quantize             # torch-free at import; the work runs in a subprocess
from .quantize.settings import QuantizeSettings
from .measure.quality import divergence, perplexity
from .measure.compare import compare
from .measure.sweep import summary, sweep
from .finetune import FinetuneRun, FinetuneSettings, MergeReport, finetune, merge, training_capabilities
from .finetune.compare import finetune_compare
from . import deploy
from .deploy import SLO, Endpoint, LoadTestResult, Server, export_gguf, load_test, serve
from .cost import CostAtScale, cost_at_scale

__version__ = "0.1.0"

__all__ = [
    "BackendMissing", "GPU", "Estimate", "Plan", "plan", "gpu", "Generation", "Hardware", "InvalidSetting",
    "LlamalabError",
    "LoadedModel", "ModelCard", "ModelNotCached", "Monitor", "NotEnoughMemory", "PromptTooLong", "Sample",
    "Scheme", "SchemeUnavailable", "UnknownHardware", "UnknownModel", "UnknownScheme", "best_scheme", "card",
    "estimate", "gpus", "hardware", "load", "max_context", "models", "requirements_table", "roofline",
    "scheme", "schemes", "quantize", "QuantizeSettings", "perplexity", "divergence", "compare", "sweep", "summary",
    "capabilities", "register_backend", "Engine",
    "finetune", "FinetuneRun", "FinetuneSettings", "merge", "MergeReport", "finetune_compare", "training_capabilities",
    "deploy", "Endpoint", "export_gguf", "serve", "Server", "load_test", "LoadTestResult", "SLO",
    "CostAtScale", "cost_at_scale",
]
