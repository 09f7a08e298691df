"""Fine-tuning: LoRA, QLoRA and full fine-tuning, measured while they run (issue 8)."""
