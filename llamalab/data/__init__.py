"""The bundled public-domain texts and the fine-tuning dataset, with their provenance
(README.md here)."""

from pathlib import Path

HERE = Path(__file__).parent
# the bundled chat datasets, by name: fine-tuning (llamalab.finetune) and evaluation (evaluate)
DATASETS = {
    "house-format": "finetune_house_format_train.jsonl",
    "house-format-heldout": "finetune_house_format_heldout.jsonl",
    # notebook 01's limitations lab: three task types, 12 prompts each (README.md here)
    "known-answers": "eval_known_answers.jsonl",
    "format-following": "eval_format_following.jsonl",
    "arithmetic": "eval_arithmetic.jsonl",
}
