"""Fine-tuning: LoRA, QLoRA and full fine-tuning, measured while they run (issue 8).

    run = llamalab.finetune("default", "house-format", method="lora", steps=60)
    run.wait().history          # step, loss, learning_rate, grad_norm, tokens_per_s, elapsed_s, rss_bytes, eval_loss
    run.adapter_dir             # peft adapter + llamalab_finetune.json (base fingerprint, settings)

Torch-free at import; the training steps run on the runtime's torch thread.
"""
from .adapters import add_adapter, adapters, list_adapters, unload_adapter, use_adapter
from .capability import table as training_capabilities
from .merge import MergeCheckFailed, MergeReport, merge
from .run import FinetuneRun
from .settings import FinetuneSettings
from .start import finetune

__all__ = ["finetune", "FinetuneRun", "FinetuneSettings", "merge", "MergeReport", "MergeCheckFailed",
           "list_adapters", "adapters", "add_adapter", "use_adapter", "unload_adapter", "training_capabilities"]
