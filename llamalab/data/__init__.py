"""The bundled public-domain texts and the fine-tuning dataset, with their provenance
(README.md here)."""

from pathlib import Path

HERE = Path(__file__).parent
