"""Fine-tuning: LoRA, QLoRA and full fine-tuning, measured while they run (issue 8).

    run = llamalab.finetune("default", "house-format", method="lora", steps=60)
    run.wait().history          # step, loss, learning_rate, grad_norm, tokens_per_s, elapsed_s, rss_bytes, eval_loss
    run.adapter_dir             # peft adapter + llamalab_finetune.json (base fingerprint, settings)
    llamalab.finetune("default", "house-format", resume=run.output_dir, steps=80)   # a stopped run, any process

In a job-runner subprocess instead of this process: `jobs.start("llamalab.finetune.worker:train", kwargs=...)`.

Torch-free at import; the training steps run on the runtime's torch thread.
"""
from .adapters import adapters, add_adapter, list_adapters, unload_adapter, use_adapter
from .capability import table as training_capabilities
from .merge import MergeCheckFailed, MergeReport, merge
from .run import FinetuneRun
from .settings import FinetuneSettings
from .start import finetune

__all__ = ["FinetuneRun", "FinetuneSettings", "MergeCheckFailed", "MergeReport", "adapters", "add_adapter", "finetune",
           "list_adapters", "merge", "training_capabilities", "unload_adapter", "use_adapter"]
