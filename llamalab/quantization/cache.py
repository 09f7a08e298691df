"""Where quantize-your-own results are written: LLAMALAB_CACHE/quantized/<name>-<key>/, keyed by
everything that changes the result (model, scheme, settings, calibration, library versions). Pure
Python. Finding them again is the runtime's job (llamalab/runtime/files/store.py)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.paths import cached
from ..runtime.files.store import MANIFEST, is_complete

VERSIONED = ("llamalab", "gptqmodel", "transformers", "torch", "optimum")


@dataclass(frozen=True)
class Settings:
    """Everything that changes a quantized checkpoint. Part of the cache key,
    and saved beside it."""

    scheme: str  # catalog name: gptq-4bit, gptq-8bit, awq-4bit
    method: str  # gptq | awq
    bits: int
    group_size: int
    samples: int  # calibration rows
    seq_len: int  # tokens per row
    calibration: str  # name of the calibration text
    calibration_sha256: str
    batch_size: int = 1
    options: dict = field(default_factory=dict, hash=False)  # extra gptqmodel config fields

    def to_dict(self) -> dict:
        return asdict(self)


def versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = ""
    return out


def key(fingerprint: str, settings: Settings, vers: dict[str, str] | None = None) -> str:
    blob = json.dumps(
        {"model": fingerprint, "settings": settings.to_dict(), "versions": vers or versions()},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def folder(model_name: str, settings: Settings, k: str) -> Path:
    """The checkpoint's folder: the shared cache's when complete there, else the writable one's."""
    name = f"{model_name}-{settings.method}-{settings.bits}bit-g{settings.group_size}-{k}"
    return cached(Path("quantized") / name, is_complete)


def write_manifest(path: Path, record: dict) -> None:
    (path / MANIFEST).write_text(
        json.dumps({**record, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2)
    )
