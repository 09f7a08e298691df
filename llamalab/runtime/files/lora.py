"""LoRA adapters as GGUF files (what llama.cpp's `convert_lora_to_gguf.py` writes): read what one
holds and check it fits a base GGUF before llama.cpp is asked to load it (llama.cpp only logs
why it refused one, and a server started with a misfit fails without saying which adapter).

An adapter tensor `blk.N.attn_q.weight.lora_a` has ggml shape [in, r] and `.lora_b` [r, out];
the base weight `blk.N.attn_q.weight` is [in, out] (gguf-py's GGUFReader shapes, ne0 first)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...core.errors import InvalidSetting


class AdapterMismatch(InvalidSetting):
    """A GGUF LoRA adapter that does not fit the base GGUF it is loaded onto."""


@dataclass(frozen=True)
class AdapterFile:
    """What a GGUF adapter holds: its architecture, rank, alpha and the base weights it changes."""

    path: str
    architecture: str
    rank: int
    alpha: float
    shapes: dict  # base tensor name -> (in, out) the adapter expects


SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}  # GGUF value types; 8 is a string, 9 an array)


def read_header(path) -> tuple[dict, dict]:
    """({key: scalar or string} of a GGUF's metadata (arrays skipped), {tensor: shape}), read from
    its header only: gguf-py's GGUFReader also decodes every vocabulary string (seconds)."""
    import struct

    with open(path, "rb") as f:

        def num(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def text():
            return f.read(num("<Q")).decode("utf-8", "replace")

        def value(kind):
            if kind == 8:
                return text()
            if kind == 9:
                inner, count = num("<I"), num("<Q")
                if inner in SCALARS:
                    f.seek(count * struct.calcsize(SCALARS[inner]), 1)
                else:
                    for _ in range(count):
                        value(inner)
                return None
            return num(SCALARS[kind])

        if f.read(4) != b"GGUF":
            raise InvalidSetting(f"{path} is not a GGUF file.", "Pass a .gguf file.")
        num("<I")  # version
        n_tensors, n_kv = num("<Q"), num("<Q")
        kv = {}
        for _ in range(n_kv):
            key = text()
            kv[key] = value(num("<I"))
        tensors = {}
        for _ in range(n_tensors):
            name = text()
            tensors[name] = tuple(num("<Q") for _ in range(num("<I")))
            f.seek(12, 1)  # type (u32) and offset (u64)
    return kv, tensors


def read_adapter(path) -> AdapterFile:
    """The adapter GGUF at `path`; InvalidSetting if it is not one (a model GGUF, another file)."""
    p = Path(path)
    if not (p.is_file() and p.suffix == ".gguf"):
        raise InvalidSetting(
            f"{p} is not a .gguf file.",
            "Pass the adapter GGUF that llamalab.export_gguf(adapter_dir) wrote.",
        )
    kv, tensors = read_header(p)
    if kv.get("general.type") != "adapter" or kv.get("adapter.type") != "lora":
        raise InvalidSetting(
            f"{p.name} is not a LoRA adapter GGUF (general.type={kv.get('general.type')!r}).",
            "Export the peft adapter folder with llamalab.export_gguf(adapter_dir) and pass "
            "that file; a model GGUF is the base, not an adapter.",
        )
    shapes, rank = {}, 0
    for name, shape in tensors.items():
        if name.endswith(".lora_a"):
            base, (n_in, rank) = name.removesuffix(".lora_a"), shape
            shapes[base] = (n_in, shapes.get(base, (0, 0))[1])
        elif name.endswith(".lora_b"):
            base = name.removesuffix(".lora_b")
            shapes[base] = (shapes.get(base, (0, 0))[0], shape[1])
    alpha = float(kv.get("adapter.lora.alpha") or 0)
    return AdapterFile(str(p), str(kv.get("general.architecture")), rank, alpha, shapes)


def check_fits(adapter, base_gguf) -> AdapterFile:
    """The adapter, if every weight it changes is in the base GGUF with the same shape;
    AdapterMismatch naming the first difference (and both files) otherwise."""
    a = adapter if isinstance(adapter, AdapterFile) else read_adapter(adapter)
    base = Path(base_gguf)
    kv, tensors = read_header(base)
    arch = kv.get("general.architecture")
    have = {name: shape for name, shape in tensors.items() if len(shape) == 2}
    problem = "" if arch == a.architecture else f"it is for {a.architecture}, the base is {arch}"
    for name, want in a.shapes.items():
        if problem:
            break
        got = have.get(name)
        if got is None:
            problem = f"it changes {name}, which the base does not have"
        elif got != want:
            problem = f"it changes {name} as {want[0]}→{want[1]}, the base's is {got[0]}→{got[1]}"
    if problem:
        raise AdapterMismatch(
            f"The adapter {Path(a.path).name} does not fit the base {base.name}: {problem}.",
            "Serve or load it with the GGUF of the model it was trained on (its "
            "llamalab_finetune.json names it), or export that base with llamalab.export_gguf.",
        )
    return a


ADAPTER_OUTTYPES = ("f16", "q8_0", "bf16", "f32")  # what convert_lora_to_gguf.py writes


def base_folder(adapter_dir) -> Path:
    """The Hugging Face folder of the model a peft adapter was trained on: the kit's manifest's
    `base_path`, else adapter_config.json's `base_model_name_or_path` when it is a folder here."""
    import json

    folder = Path(adapter_dir)
    config = folder / "adapter_config.json"
    if not config.is_file():
        raise InvalidSetting(
            f"{folder} holds no peft adapter (adapter_config.json).",
            "Pass the folder a fine-tuning run saved (run.adapter_dir).",
        )
    manifest = folder / "llamalab_finetune.json"
    candidates = [json.loads(manifest.read_text()).get("base_path")] if manifest.is_file() else []
    candidates.append(json.loads(config.read_text()).get("base_model_name_or_path"))
    for c in candidates:
        if c and (Path(c) / "config.json").is_file():
            return Path(c)
    raise InvalidSetting(
        f"The base model of the adapter in {folder} is not on this machine ({candidates}).",
        "Pass base= the folder of the model it was trained on (its config.json is enough).",
    )


def convert_adapter(adapter_dir, outtype: str = "f16", out=None, base=None, verbose=True) -> Path:
    """Write the peft adapter in `adapter_dir` as a GGUF LoRA adapter with llama.cpp's own
    `convert_lora_to_gguf.py` (`--base` the base model's folder: only its config is read)."""
    import sys

    from .gguf import run_script

    if outtype not in ADAPTER_OUTTYPES:
        raise InvalidSetting(
            f"convert_lora_to_gguf.py writes {', '.join(ADAPTER_OUTTYPES)}, not {outtype!r}.",
            "Use outtype='f16' (the adapter is small; its base keeps its own type).",
        )
    folder = Path(adapter_dir)
    base = Path(base) if base is not None else base_folder(folder)
    out = Path(out) if out is not None else folder / f"adapter-{outtype}.gguf"
    if verbose:
        print(
            f"llamalab: converting {folder} to a GGUF LoRA adapter ({outtype.upper()})…",
            file=sys.stderr,
            flush=True,
        )
    run_script(
        "convert_lora_to_gguf.py",
        [str(folder), "--base", str(base), "--outtype", outtype],
        out,
        "Check the adapter is a peft LoRA of a llama.cpp-supported architecture and --base is "
        "the folder of the model it was trained on.",
    )
    return out
