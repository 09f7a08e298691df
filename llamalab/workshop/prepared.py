"""What the course's notebooks find ready in the kit's cache when the day before was done: the GGUF
types they load, notebook 02's GPTQ/AWQ checkpoints and notebook 01's random-weight GGUFs — by
name, with where each is (or would be). `check` reports them; `bundle` ships them."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

COURSE_GGUF = ("f16", "q8_0", "q4_0", "q4_k_m")  # loaded by 01, 02 and 04 (binder/postBuild's list)
COURSE_QUANTIZED = ("gptq", "awq")  # notebook 02's quantize(MODEL, method), default settings
RANDOM_NOTEBOOK = "01_landscape.ipynb"  # its parameters cell lists the random-weight shapes


def gguf_files() -> dict[str, Path]:
    """The embedded model's course GGUFs by type (the paths convert_gguf writes; may not exist).
    Needs the embedded model converted and llama-cpp-python installed (the name holds its
    version)."""
    from ..runtime.files import embedded
    from ..runtime.files.gguf import output_path

    return {t: output_path(embedded.model_dir(), t) for t in COURSE_GGUF}


def quantized_folders() -> dict[str, Path | None]:
    """Notebook 02's checkpoints by method: the folder quantize() would reuse, or None."""
    from ..quantization import cached

    return {m: cached("default", m) for m in COURSE_QUANTIZED}


def random_shapes(notebooks: Path) -> list[tuple] | None:
    """(hidden, layers, ffn, heads, kv_heads) of each RANDOM_MODELS row in notebook 01's code:
    the notebook stays the one place that names them."""
    notebook = Path(notebooks) / RANDOM_NOTEBOOK
    if not notebook.is_file():
        return None
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        src = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
        match = re.search(r"^RANDOM_MODELS\s*=\s*(\[.*?\])\s*$", src, re.M | re.S)
        if match:
            return [tuple(row[1:]) for row in ast.literal_eval(match.group(1))]
    return None


def random_files(notebooks: Path) -> dict[tuple, Path] | None:
    """Notebook 01's random-weight GGUFs by shape (where random_gguf writes them; may not exist)."""
    from ..measure.random_weights import RandomShape, random_gguf_path

    shapes = random_shapes(notebooks)
    if shapes is None:
        return None
    return {s: random_gguf_path(RandomShape(*s)) for s in shapes}
