"""Fine-tuning: LoRA, QLoRA, DoRA and full fine-tuning, measured while they run.

    run = llamalab.finetune("default", "house-format", method="lora", steps=60)
    run.wait().history          # step, loss, learning_rate, grad_norm, tokens_per_s, elapsed_s,
                                # rss_bytes, eval_loss
    run.adapter_dir             # peft adapter + llamalab_finetune.json (base fingerprint, settings)
    # a stopped run, any process:
    llamalab.finetune("default", "house-format", resume=run.output_dir, steps=80)

A run is a thread Task (its steps run on the one torch thread); in a subprocess Task instead:
`tasks.start_process("llamalab.train.worker:train", kwargs=...)`. Torch-free at import.
"""
