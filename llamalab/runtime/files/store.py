"""What the kit has already made, and how to find it: quantize-your-own checkpoints in
LLAMALAB_CACHE/quantized/<name>-<key>/ (or the shared cache's), each with a manifest saying how it
was made.

Reading only: the resolver finds results here; `llamalab.quantize` (a floor above) writes them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ...core.paths import cache_dir, cache_roots
from . import embedded

MANIFEST = "llamalab_quantize.json"


def quantized_root() -> Path:
    return cache_dir() / "quantized"


def model_fingerprint(model_dir: Path) -> str:
    """Identity of the source weights: config.json bytes plus each weight file's name, size and
    mtime (hashing whole multi-GB files would take minutes); the embedded model is keyed by its GGUF
    checksum."""
    model_dir = Path(model_dir)
    if model_dir.resolve() == embedded.model_dir().resolve():
        return f"embedded:{embedded.NAME}:{embedded.GGUF_SHA256}"
    h = hashlib.sha256((model_dir / "config.json").read_bytes())
    for f in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"local:{model_dir.name}:{h.hexdigest()[:16]}"


def is_complete(path: Path) -> bool:
    return (path / MANIFEST).is_file() and (path / "config.json").is_file()


def read_manifest(path: Path) -> dict:
    return json.loads((Path(path) / MANIFEST).read_text())


def find(fingerprint: str, method: str, bits: int) -> Path | None:
    """The newest complete cached result for (model, method, bits), preferring the kit's
    default settings."""
    roots = [r / "quantized" for r in cache_roots() if (r / "quantized").is_dir()]
    found = []
    for p in (p for root in roots for p in root.iterdir()):
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
