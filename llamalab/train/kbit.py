"""bitsandbytes' 4-bit layers on a CPU, kept trainable (QLoRA) and mergeable.

On CPUs with AVX512-BF16, bitsandbytes (0.48–0.50) repacks a 4-bit weight for its fast inference
kernel at the layer's first forward in eval mode: a generation, an eval loss. That kernel has no
backward pass, so from then on gradients stop at every 4-bit layer and QLoRA trains through the
adapters' own paths only (measured on the embedded model: format compliance stayed at 0 % and
perplexity went 33 → 104 after 20 steps, where an unpacked base reached 100 %). bitsandbytes' own
inverse of the packing is lossy (the scales go through bf16), so a packed layer is quantized again
from the checkpoint it was loaded from, which reproduces the load bit for bit; and while a run
trains (or a merge is made and checked), packing is off, so an eval loss does not pack the layers
again. peft's merge dequantizes a layer's weight too, and gets garbage from a packed one (the merge
check measured KL 25 nats/token before this).
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import LlamalabError

FLAG = (
    "support_avx512bf16_for_cpu"  # bitsandbytes' Linear4bit: pack for the CPU kernel in eval mode
)


def layers(model) -> list[tuple[str, object]]:
    """(name, module) of every bitsandbytes 4-bit layer (none for other bases)."""
    return [(name, mod) for name, mod in model.named_modules() if hasattr(mod, FLAG)]


def is_packed(mod) -> bool:
    return bool(getattr(getattr(mod.weight, "quant_state", None), "packing_format_for_cpu", False))


def hold_unpacked(model, checkpoint: str | None) -> list[tuple[object, bool]]:
    """Unpack every packed layer (from `checkpoint`) and turn packing off (for a training run, or a
    merge); returns what `release` restores."""
    found = layers(model)
    packed = [(name, mod) for name, mod in found if is_packed(mod)]
    if packed:
        _quantize_again(packed, checkpoint)
    saved = [(mod, getattr(mod, FLAG)) for _, mod in found]
    for mod, _ in saved:
        setattr(mod, FLAG, False)
    return saved


def release(saved: list[tuple[object, bool]]) -> None:
    """Packing back as it was: generation afterwards uses the fast kernel again."""
    for mod, flag in saved:
        setattr(mod, FLAG, flag)


def _quantize_again(packed: list[tuple[str, object]], checkpoint: str | None) -> None:
    import bitsandbytes.functional as F
    import torch
    from safetensors import safe_open

    where = _weight_files(checkpoint)
    for name, mod in packed:
        key = _checkpoint_key(name)
        if key not in where:
            raise LlamalabError(
                f"Cannot restore the 4-bit layer {name} for training: "
                f"{key} is not in {checkpoint}.",
                "Load the model again and start training before generating with it.",
            )
        with safe_open(str(where[key]), "pt") as h:
            original = h.get_tensor(key)
        p = mod.weight
        q, state = F.quantize_4bit(
            original.to(torch.bfloat16).contiguous(),
            blocksize=p.blocksize,
            compress_statistics=p.compress_statistics,
            quant_type=p.quant_type,
            quant_storage=p.quant_storage,
        )
        p.data, p.quant_state = q, state
        if getattr(mod, "quant_state", None) is not None:
            mod.quant_state = state


def _checkpoint_key(module_name: str) -> str:
    """The checkpoint's name for a layer's weight, peft's wrapping removed."""
    name = module_name.removeprefix("base_model.model.").replace(".base_layer", "")
    return f"{name}.weight"


def _weight_files(checkpoint: str | None) -> dict[str, Path]:
    """Tensor name → the safetensors file that holds it."""
    from safetensors import safe_open

    files = sorted(Path(checkpoint).glob("*.safetensors")) if checkpoint else []
    if not files:
        raise LlamalabError(
            f"Cannot restore 4-bit layers for training: no safetensors checkpoint at {checkpoint}.",
            "Load the model again and start training before generating with it.",
        )
    where = {}
    for f in files:
        with safe_open(str(f), "pt") as h:
            where.update(dict.fromkeys(h.keys(), f))
    return where
