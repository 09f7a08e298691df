"""Where quantize-your-own results live: LLAMALAB_CACHE/quantized/<name>-<key>/, keyed by everything
that changes the result (model, scheme, settings, calibration, library versions). Pure Python."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import embedded

MANIFEST = "llamalab_quantize.json"
VERSIONED = ("llamalab", "gptqmodel", "transformers", "torch", "optimum")


@dataclass(frozen=True)
class Settings:
    """Everything that changes a quantized checkpoint. Part of the cache key, and saved beside it."""
    scheme: str                 # catalog name: gptq-4bit, gptq-8bit, awq-4bit
    method: str                 # gptq | awq
    bits: int
    group_size: int
    samples: int                # calibration rows
    seq_len: int                # tokens per row
    calibration: str            # name of the calibration text
    calibration_sha256: str
    batch_size: int = 1
    options: dict = field(default_factory=dict, hash=False)   # extra gptqmodel config fields

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


def model_fingerprint(model_dir: Path) -> str:
    """Identity of the source weights: config.json bytes plus each weight file's name, size and mtime
    (hashing whole multi-GB files would take minutes); the embedded model is keyed by its GGUF checksum."""
    model_dir = Path(model_dir)
    if model_dir.resolve() == embedded.model_dir().resolve():
        return f"embedded:{embedded.NAME}:{embedded.GGUF_SHA256}"
    h = hashlib.sha256((model_dir / "config.json").read_bytes())
    for f in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"local:{model_dir.name}:{h.hexdigest()[:16]}"


def key(fingerprint: str, settings: Settings, vers: dict[str, str] | None = None) -> str:
    blob = json.dumps({"model": fingerprint, "settings": settings.to_dict(), "versions": vers or versions()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def root() -> Path:
    return embedded.cache_dir() / "quantized"


def folder(model_name: str, settings: Settings, k: str) -> Path:
    return root() / f"{model_name}-{settings.method}-{settings.bits}bit-g{settings.group_size}-{k}"


def is_complete(path: Path) -> bool:
    return (path / MANIFEST).is_file() and (path / "config.json").is_file()


def write_manifest(path: Path, record: dict) -> None:
    (path / MANIFEST).write_text(json.dumps({**record, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))


def read_manifest(path: Path) -> dict:
    return json.loads((Path(path) / MANIFEST).read_text())


def find(fingerprint: str, method: str, bits: int) -> Path | None:
    """The newest complete cached result for (model, method, bits), preferring the kit's default settings."""
    if not root().is_dir():
        return None
    found = []
    for p in root().iterdir():
        if not is_complete(p):
            continue
        try:
            m = read_manifest(p)
        except (OSError, ValueError):
            continue
        s = m.get("settings", {})
        if m.get("model") == fingerprint and s.get("method") == method and s.get("bits") == bits:
            found.append((bool(m.get("default_settings")), m.get("created", ""), p))
    return max(found)[2] if found else None
