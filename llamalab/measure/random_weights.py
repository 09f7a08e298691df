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
from ..core.paths import atomic_file, cached
from ..runtime.files import embedded
from ..runtime.files.gguf import SIDECAR, convert

LABEL_KEY = "llamalab.random_weights"
KEPT_GENERAL = ("general.file_type", "general.quantization_version", "general.alignment")
ARCHS = {"llama": False, "qwen2": True}  # llama.cpp architecture → q/k/v have biases


@dataclass(frozen=True)
class RandomShape:
    """The shape of a llama model: width, depth, MLP width, attention heads and grouped KV heads;
    `vocab` rows of embedding (0: the embedded tokenizer's 49152; a larger one pads the token list,
    as llama.cpp's converter does) and the llama.cpp `arch` ("llama", or "qwen2": q/k/v biases)."""

    hidden: int
    layers: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int = 0
    arch: str = "llama"

    def __post_init__(self):
        if min(self.hidden, self.layers, self.ffn, self.heads, self.kv_heads) < 1:
            raise InvalidSetting(f"{self}: every size must be a positive integer")
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise InvalidSetting(
                f"{self}: hidden must divide by heads, and heads by kv_heads (choose e.g. "
                f"hidden=960, heads=15, kv_heads=5)"
            )
        if self.arch not in ARCHS:
            raise InvalidSetting(f"{self}: arch must be one of {', '.join(ARCHS)}")

    @property
    def file_name(self) -> str:
        vocab = f"-v{self.vocab}" if self.vocab else ""
        return (
            f"random-weights-{self.arch}-h{self.hidden}-l{self.layers}-f{self.ffn}"
            f"-{self.heads}x{self.kv_heads}{vocab}-f16.gguf"
        )


def random_gguf_path(shape: RandomShape) -> Path:
    """Where `random_gguf` finds (the shared cache's, when built there) or writes `shape`'s GGUF."""
    return cached(f"random-gguf/{shape.file_name}", Path.is_file)


def random_gguf(shape: RandomShape, path: str | Path | None = None, seed: int = 0) -> Path:
    """The GGUF of `shape` with random weights: made once (default: LLAMALAB_CACHE/random-gguf/),
    then reused. Loads like any GGUF: `llamalab.load(str(path), "gguf")`."""
    import gguf
    import numpy as np

    path = Path(path) if path else random_gguf_path(shape)
    if path.exists():
        return path
    src = gguf.GGUFReader(convert("default", "f16", verbose=False))
    own = int(src.fields["llama.vocab_size"].contents())
    if shape.vocab and shape.vocab < own:
        raise InvalidSetting(
            f"{shape}: vocab {shape.vocab} is smaller than the embedded tokenizer's {own}",
            f"Use vocab=0 or at least {own}.",
        )
    shapes = _tensor_shapes(shape, shape.vocab or own)
    with atomic_file(path) as tmp:
        w = gguf.GGUFWriter(str(tmp), shape.arch)
        _copy_metadata(src, w, shape, shape.vocab or own)
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


def _copy_metadata(src, w, shape: RandomShape, vocab: int) -> None:
    """The embedded model's tokenizer and llama keys (renamed for `shape.arch`), with this shape's
    sizes, the token list padded to `vocab`, and the random-weights label."""
    import gguf

    arch = {
        "llama.block_count": shape.layers,
        "llama.embedding_length": shape.hidden,
        "llama.feed_forward_length": shape.ffn,
        "llama.attention.head_count": shape.heads,
        "llama.attention.head_count_kv": shape.kv_heads,
        "llama.rope.dimension_count": shape.hidden // shape.heads,
        "llama.vocab_size": vocab,
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
        value = _padded(key, arch.get(key, f.contents()), vocab)
        w.add_key_value(key.replace("llama.", f"{shape.arch}.", 1), value, f.types[0], sub)
    w.add_name(f"random weights, {shape.arch} h{shape.hidden} l{shape.layers}")
    w.add_description(
        "RANDOM WEIGHTS (llamalab.random_gguf): a real llama shape for speed "
        "measurements; the text it writes is nonsense"
    )
    w.add_bool(LABEL_KEY, True)


PADDING = {  # what llama.cpp's converter gives the tokens a tokenizer lacks: "[PAD<id>]", UNUSED
    "tokenizer.ggml.tokens": lambda i: f"[PAD{i}]",
    "tokenizer.ggml.token_type": lambda i: 5,
    "tokenizer.ggml.scores": lambda i: 0.0,
}


def _padded(key: str, value, vocab: int):
    """A per-token list of the tokenizer's metadata, padded to `vocab` entries."""
    if key not in PADDING or len(value) >= vocab:
        return value
    return [*value, *(PADDING[key](i) for i in range(len(value), vocab))]


def _tensor_shapes(shape: RandomShape, vocab: int) -> dict[str, tuple[int, ...]]:
    """llama.cpp's tensor names and shapes for `shape`; the output matrix is tied to
    the token embedding."""
    h, kv = shape.hidden, shape.hidden // shape.heads * shape.kv_heads
    shapes = {"token_embd.weight": (vocab, h)}
    for i in range(shape.layers):
        if ARCHS[shape.arch]:
            shapes.update(
                {f"blk.{i}.attn_{x}.bias": (n,) for x, n in (("q", h), ("k", kv), ("v", kv))}
            )
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
