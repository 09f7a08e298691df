"""The bundled public-domain texts (provenance in README.md beside this file)."""

from __future__ import annotations

from dataclasses import dataclass

from . import HERE


@dataclass(frozen=True)
class Text:
    """A named text and where it came from, so every number measured on it can say so."""

    name: str
    source: str
    text: str


def calibration() -> Text:
    """Genesis 1–25 (KJV): calibration data for GPTQ / AWQ."""
    return Text(
        "kjv-genesis-1-25",
        "King James Version (1611, public domain), Genesis 1–25",
        (HERE / "calibration_kjv_genesis.txt").read_text(encoding="utf-8"),
    )


def heldout() -> Text:
    """Luke 1–4 (KJV): held-out text for perplexity and KL; never used for calibration."""
    return Text(
        "kjv-luke-1-4",
        "King James Version (1611, public domain), Luke 1–4",
        (HERE / "heldout_kjv_luke.txt").read_text(encoding="utf-8"),
    )
