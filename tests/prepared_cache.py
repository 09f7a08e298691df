"""A kit cache as the day before leaves it (`llamalab workshop check` passes on it), in a test's
folder: the embedded model (the real converted one, linked, or a stand-in), and small stand-ins at
the real paths of the course's GGUFs, GPTQ/AWQ checkpoints, random-weight GGUFs and llama.cpp's
converter — the check reads names and presence, the bundle copies what is there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from llamalab.course import notebooks_dir
from llamalab.quantization import QuantizeSettings, _target
from llamalab.runtime.files import embedded
from llamalab.runtime.files.gguf import converter_dir
from llamalab.workshop import prepared


def prepare(cache: Path, real_model: Path, link: bool = False) -> None:
    """Fill `cache` (LLAMALAB_CACHE must point at it already). link: the real converted model
    linked in (a bundle then ships real weights); else a stand-in holding its config.json."""
    model = cache / embedded.NAME
    cache.mkdir(parents=True, exist_ok=True)
    if link:
        model.symlink_to(real_model, target_is_directory=True)
    else:
        model.mkdir(parents=True)
        shutil.copy(real_model / "config.json", model / "config.json")  # quantize's key reads it
        (model / "model.safetensors").write_bytes(b"weights")
    for t, path in prepared.gguf_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"gguf {t}".encode())
        Path(f"{path}.llamalab.json").write_text(json.dumps({"tokenizer": str(model)}))
    for method in prepared.COURSE_QUANTIZED:
        folder = _target("default", method, QuantizeSettings()).folder
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "llamalab_quantize.json").write_text("{}")
    for path in prepared.random_files(notebooks_dir()).values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"random weights")
    converter_dir().mkdir(parents=True)
    (converter_dir() / "convert_hf_to_gguf.py").write_text("# llama.cpp's converter\n")
