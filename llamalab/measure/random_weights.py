"""Llama-architecture GGUF files with random F16 weights, for measuring speed and memory at shapes
the cache has no real model of (notebook 01: decode tokens/s against memory bandwidth ÷ bytes per
token). Nonsense text, real speed: a token reads exactly the bytes a trained model of that
shape reads.

Labelled as random weights in their metadata (`general.name`, `general.description` and
`llamalab.random_weights = true`), so no one mistakes one for a model. The tokenizer and its
metadata are the embedded model's (from its F16 GGUF); tensors are written one at a time, so memory
stays near the largest tensor (the token embedding) whatever the file size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InvalidSetting
from ..core.paths import atomic_file, cache_dir
from ..runtime.files import embedded
from ..runtime.files.gguf import SIDECAR, convert

LABEL_KEY = "llamalab.random_weights"
KEPT_GENERAL = ("general.file_type", "general.quantization_version", "general.alignment")


@dataclass(frozen=True)
class RandomShape:
    """The shape of a llama model: width, depth, MLP width, attention heads and grouped KV heads."""

    hidden: int
    layers: int
    ffn: int
    heads: int
    kv_heads: int

    def __post_init__(self):
        if min(self.hidden, self.layers, self.ffn, self.heads, self.kv_heads) < 1:
            raise InvalidSetting(f"{self}: every size must be a positive integer")
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise InvalidSetting(
                f"{self}: hidden must divide by heads, and heads by kv_heads (choose e.g. "
                f"hidden=960, heads=15, kv_heads=5)"
            )

    @property
    def file_name(self) -> str:
        return (
            f"random-weights-llama-h{self.hidden}-l{self.layers}-f{self.ffn}"
            f"-{self.heads}x{self.kv_heads}-f16.gguf"
        )


def random_gguf(shape: RandomShape, path: str | Path | None = None, seed: int = 0) -> Path:
    """The GGUF of `shape` with random weights: made once (default: LLAMALAB_CACHE/random-gguf/),
    then reused. Loads like any GGUF: `llamalab.load(str(path), "gguf")`."""
    import gguf
    import numpy as np

    path = Path(path) if path else cache_dir() / "random-gguf" / shape.file_name
    if path.exists():
        return path
    src = gguf.GGUFReader(convert("default", "f16", verbose=False))
    shapes = _tensor_shapes(shape, int(src.fields["llama.vocab_size"].contents()))
    with atomic_file(path) as tmp:
        w = gguf.GGUFWriter(str(tmp), "llama")
        _copy_metadata(src, w, shape)
        for name, s in shapes.items():
            dtype = np.dtype(np.float32 if len(s) == 1 else np.float16)
            w.add_tensor_info(name, s, dtype, int(np.prod(s)) * dtype.itemsize)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        rng = np.random.default_rng(seed)
        for s in shapes.values():  # norms 1, matrices N(0, 0.02): finite logits, nonsense text
            w.write_tensor_data(
                np.ones(s, np.float32)
                if len(s) == 1
                else (rng.standard_normal(s, np.float32) * 0.02).astype(np.float16)
            )
        w.close()
    Path(str(path) + SIDECAR).write_text(json.dumps({"tokenizer": str(embedded.ensure_model())}))
    return path


def _copy_metadata(src, w, shape: RandomShape) -> None:
    """The embedded model's tokenizer and llama keys, with this shape's sizes and the
    random-weights label."""
    import gguf

    arch = {
        "llama.block_count": shape.layers,
        "llama.embedding_length": shape.hidden,
        "llama.feed_forward_length": shape.ffn,
        "llama.attention.head_count": shape.heads,
        "llama.attention.head_count_kv": shape.kv_heads,
        "llama.rope.dimension_count": shape.hidden // shape.heads,
    }
    for key, f in src.fields.items():
        if (
            key.startswith("GGUF.")
            or key == "general.architecture"
            or (key.startswith("general.") and key not in KEPT_GENERAL)
        ):
            continue
        if key in ("llama.attention.key_length", "llama.attention.value_length"):
            continue  # derived from hidden / heads when absent
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, arch.get(key, f.contents()), f.types[0], sub)
    w.add_name(f"random weights, llama h{shape.hidden} l{shape.layers}")
    w.add_description(
        "RANDOM WEIGHTS (llamalab.random_gguf): a real llama shape for speed "
        "measurements; the text it writes is nonsense"
    )
    w.add_bool(LABEL_KEY, True)


def _tensor_shapes(shape: RandomShape, vocab: int) -> dict[str, tuple[int, ...]]:
    """llama.cpp's tensor names and shapes for `shape`; the output matrix is tied to
    the token embedding."""
    h, kv = shape.hidden, shape.hidden // shape.heads * shape.kv_heads
    shapes = {"token_embd.weight": (vocab, h)}
    for i in range(shape.layers):
        shapes.update(
            {
                f"blk.{i}.attn_norm.weight": (h,),
                f"blk.{i}.ffn_norm.weight": (h,),
                f"blk.{i}.attn_q.weight": (h, h),
                f"blk.{i}.attn_k.weight": (kv, h),
                f"blk.{i}.attn_v.weight": (kv, h),
                f"blk.{i}.attn_output.weight": (h, h),
                f"blk.{i}.ffn_gate.weight": (shape.ffn, h),
                f"blk.{i}.ffn_up.weight": (shape.ffn, h),
                f"blk.{i}.ffn_down.weight": (h, shape.ffn),
            }
        )
    shapes["output_norm.weight"] = (h,)
    return shapes
