"""llamalab: explore open-weight LLMs on your own machine — estimate, load, quantize,
fine-tune, serve, measure.

    import llamalab
    llamalab.estimate("llama-3.1-8b", "gptq-4bit", context=8192)
    m = llamalab.load()                      # the embedded SmolLM2-135M-Instruct, offline
    m.generate("What is the capital of France?")

Everything a notebook needs is here, one name per idea (docs/architecture.md has the floor plan).
Importing llamalab does not import torch; loading a model does.
"""

from .catalog import (
    GPU,
    ModelCard,
    Scheme,
    card,
    gpu,
    gpus,
    models,
    register_scheme,
    scheme,
    schemes,
)
from .catalog.checklist import Question, checklist
from .catalog.custom import custom_card
from .catalog.providers import provider, providers
from .catalog.training import table as training_capabilities
from .core.errors import (
    BackendMissing,
    InvalidSetting,
    LlamalabError,
    ModelNotCached,
    NotEnoughMemory,
    PromptTooLong,
    SchemeUnavailable,
    TaskFailed,
    TaskStopped,
    UnknownHardware,
    UnknownModel,
    UnknownScheme,
)
from .core.hardware import Hardware, hardware, memory_bandwidth
from .core.memory import Monitor, Sample
from .core.metrics import Metric, metric
from .core.settings import describe
from .core.tasks import Task
from .core.torch_thread import run as on_torch_thread
from .engines.base import Engine, Sampling, Usage
from .engines.http import (
    EndpointBusy,
    EndpointError,
    EndpointSettings,
    EndpointStreamError,
    EndpointTimeout,
)
from .engines.preview import RequestPreview
from .measure import scorers
from .measure.blind import BlindPair, BlindRound, blind_answers, blind_round
from .measure.compare import compare
from .measure.evaluate import Evaluation, Evaluator, evaluate
from .measure.inspect import TokenizersDiffer, TokenStep, TokenView, inspect_tokens
from .measure.loadtest import SLO, LoadTestResult, LoadTestSettings, agreement, load_test
from .measure.quality import (
    Divergence,
    Perplexity,
    Reference,
    divergence,
    perplexity,
    score_against,
)
from .measure.random_checkpoint import random_checkpoint
from .measure.random_weights import RandomShape, random_gguf
from .measure.ratings import NotEnoughVotes, Rating, Ratings, VotesDisconnected, bradley_terry, elo
from .measure.sweep import SweepSettings, summarize, sweep
from .plan.choice import SchemeChoice, best_scheme, choose_scheme
from .plan.cost import CostAssumptions, CostAtScale, cost_at_scale
from .plan.deployment import DeploymentPlan, PlanDoesNotFit, deployment_plan
from .plan.estimator import Estimate, estimate, max_context, requirements_table
from .plan.kubernetes import validate_manifests
from .plan.ollama import commands as ollama_commands
from .plan.ollama import modelfile as ollama_modelfile
from .plan.open_or_closed import Reason, Recommendation, open_or_closed
from .plan.selection import selection_grid
from .plan.sizing import Sizing, sizing
from .plan.speed import roofline
from .quantization import Quantized, quantize
from .quantization.settings import QuantizeSettings
from .runtime import (
    Generation,
    LiveStats,
    LoadedModel,
    capabilities,
    connect,
    load,
    register_backend,
    served_models,
)
from .runtime.files import model_files
from .runtime.files.gguf import convert as convert_gguf
from .runtime.files.lora import AdapterMismatch
from .runtime.remote import request_preview
from .runtime.room import (
    Room,
    RoomError,
    RoomRecords,
    current_room,
    leave_room,
    post_to_room,
    room_records,
    use_room,
)
from .serving.adapter_export import AdapterCheck
from .serving.export import Export, ExportCheck, export_gguf
from .serving.served_adapters import NoAdapters, ServedAdapterCheck, UnknownAdapter
from .serving.server import Server, ServerFailed, ServeSettings, serve
from .serving.stop_check import StopCheck, check_served_stop
from .serving.template_check import (
    ExportMismatch,
    ModelfileCheck,
    TemplateCheck,
    check_modelfile,
    check_template,
)
from .train.adapters import adapters, add_adapter, list_adapters, remove_adapters, use_adapter
from .train.compare import finetune_compare
from .train.compare import row as finetune_row
from .train.data import conversations, preview
from .train.merge import MergeCheckFailed, MergeReport, merge
from .train.run import FinetuneRun
from .train.settings import FinetuneSettings
from .train.start import finetune

__version__ = "0.1.0"

__all__ = [
    # the catalog: facts as data
    "GPU",
    "ModelCard",
    "Scheme",
    "card",
    "custom_card",
    "gpu",
    "gpus",
    "models",
    "provider",
    "providers",
    "register_scheme",
    "scheme",
    "schemes",
    "training_capabilities",
    # arithmetic: memory, sizing, cost, deployment artefacts (no torch)
    "CostAssumptions",
    "CostAtScale",
    "DeploymentPlan",
    "Estimate",
    "PlanDoesNotFit",
    "Sizing",
    "best_scheme",
    "choose_scheme",
    "selection_grid",
    "SchemeChoice",
    "cost_at_scale",
    "deployment_plan",
    "estimate",
    "max_context",
    "checklist",
    "Question",
    "open_or_closed",
    "Recommendation",
    "Reason",
    "ollama_commands",
    "ollama_modelfile",
    "requirements_table",
    "roofline",
    "sizing",
    "validate_manifests",
    # this machine, memory, long work, the vocabulary
    "Hardware",
    "Metric",
    "Monitor",
    "Sample",
    "Task",
    "describe",
    "hardware",
    "memory_bandwidth",
    "metric",
    "on_torch_thread",
    # models: load, connect, generate
    "Engine",
    "Generation",
    "LiveStats",
    "LoadedModel",
    "Sampling",
    "Usage",
    "capabilities",
    "connect",
    "convert_gguf",
    "load",
    "model_files",
    "register_backend",
    "request_preview",
    "RequestPreview",
    "served_models",
    "Room",
    "current_room",
    "leave_room",
    "post_to_room",
    "room_records",
    "use_room",
    # quantize, measure
    "QuantizeSettings",
    "Quantized",
    "quantize",
    "Divergence",
    "Perplexity",
    "RandomShape",
    "Reference",
    "SweepSettings",
    "TokenStep",
    "TokenView",
    "TokenizersDiffer",
    "inspect_tokens",
    "Evaluation",
    "Evaluator",
    "compare",
    "divergence",
    "score_against",
    "evaluate",
    "perplexity",
    "scorers",
    "random_checkpoint",
    "random_gguf",
    "summarize",
    "sweep",
    "BlindPair",
    "BlindRound",
    "Rating",
    "Ratings",
    "blind_answers",
    "blind_round",
    "bradley_terry",
    "elo",
    # fine-tune
    "FinetuneRun",
    "FinetuneSettings",
    "MergeCheckFailed",
    "MergeReport",
    "adapters",
    "add_adapter",
    "conversations",
    "finetune",
    "finetune_compare",
    "finetune_row",
    "list_adapters",
    "merge",
    "preview",
    "remove_adapters",
    "use_adapter",
    # serve and load-test
    "AdapterCheck",
    "Export",
    "ExportCheck",
    "ServedAdapterCheck",
    "ModelfileCheck",
    "StopCheck",
    "TemplateCheck",
    "check_modelfile",
    "check_served_stop",
    "check_template",
    "LoadTestResult",
    "LoadTestSettings",
    "SLO",
    "Server",
    "ServeSettings",
    "agreement",
    "export_gguf",
    "load_test",
    "serve",
    # errors
    "AdapterMismatch",
    "BackendMissing",
    "NoAdapters",
    "UnknownAdapter",
    "ExportMismatch",
    "EndpointError",
    "EndpointBusy",
    "EndpointSettings",
    "EndpointStreamError",
    "EndpointTimeout",
    "InvalidSetting",
    "LlamalabError",
    "ModelNotCached",
    "NotEnoughMemory",
    "NotEnoughVotes",
    "PromptTooLong",
    "RoomError",
    "RoomRecords",
    "SchemeUnavailable",
    "ServerFailed",
    "TaskFailed",
    "TaskStopped",
    "UnknownHardware",
    "UnknownModel",
    "UnknownScheme",
    "VotesDisconnected",
]
