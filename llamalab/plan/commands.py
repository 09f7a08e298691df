"""The server command of a deployment plan: which engine serves a scheme, which weights it loads (a
checkpoint that exists in that format, or the folder `llamalab.quantize` makes), and its flags, only
where the server would not choose them itself. Every command is parsed against the server's
documented CLI (catalog/serve_flags.toml) before a plan shows it.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from functools import cache

from .. import catalog
from ..catalog import GPU, ModelCard, Scheme
from ..core.errors import InvalidSetting, SchemeUnavailable

PORT = 8000
LLAMA_SERVER_IMAGE = "ghcr.io/ggml-org/llama.cpp:server-cuda"
# vLLM's minimum compute capability per --quantization kernel (vllm 0.11,
# vllm/model_executor/layers/quantization: awq.py:60, gptq.py:107, fp8.py:114, bitsandbytes.py:75)
# and bf16's (vllm/platforms/cuda.py:63: sm ≥ 8.0). FP8 runs W8A8 from 8.9 (Ada/Hopper), below that
# weight-only through FP8 Marlin (docs/features/quantization/fp8.md).
MIN_CAPABILITY = {"awq": 7.5, "gptq": 6.0, "fp8": 8.0, "bitsandbytes": 7.0, "bfloat16": 8.0}
FP8_TENSOR_CORES = 8.9


@dataclass(frozen=True)
class Weights:
    """What the server loads: a Hub repo or a local path, and whether it exists yet."""

    source: str
    published: bool  # False: you make it first, as `how` says
    how: str


def engine_for(s: Scheme) -> str:
    """GGUF files are llama.cpp's; everything else is served by vLLM."""
    return "llama.cpp" if s.is_gguf else "vllm"


def weights(c: ModelCard, s: Scheme) -> Weights:
    """The checkpoint a plan serves under `s`: the instruct model for float and in-flight schemes, a
    published GPTQ/AWQ checkpoint of the scheme's bits (the catalog lists 4-bit ones), else the
    folder `llamalab.quantize` writes; a GGUF file from `llamalab.export_gguf`."""
    name = f"{c.name}-{s.name}"
    if s.is_gguf:
        return Weights(
            f"/models/{name}.gguf",
            False,
            f"llamalab.export_gguf({c.name!r}, outtype={s.name!r}) writes it; copy it to /models.",
        )
    if s.family == "fp8":
        return _fp8_weights(c, name)
    if not s.made_by:
        return Weights(c.hub_id_instruct or c.hub_id, True, "the Hub's original checkpoint")
    published = c.published(s.made_by) if s.bits == 4 else ()
    if published:
        return Weights(published[0], True, f"published {s.name} checkpoint on the Hub")
    return Weights(
        f"/models/{name}",
        False,
        f"no published {s.name} checkpoint of {c.name} is known: "
        f"llamalab.quantize({c.name!r}, {s.made_by!r}, bits={int(s.bits)}) makes one; copy the "
        "folder to /models.",
    )


def _fp8_weights(c: ModelCard, name: str) -> Weights:
    if c.fp8:
        return Weights(c.fp8[0], True, "published FP8 checkpoint on the Hub")
    return Weights(
        f"/models/{name}",
        False,
        f"no published FP8 checkpoint of {c.name} is known: llm-compressor's FP8_DYNAMIC recipe "
        "makes one without calibration data (copy the folder to /models); `--quantization fp8` on "
        "the bf16 checkpoint also works, but its load passes through bf16 on the GPUs.",
    )


def quantization_flag(s: Scheme, g: GPU) -> tuple[list[str], str]:
    """vLLM's --quantization, only where it would not detect it: GPTQ/AWQ checkpoints say their
    method in config.json (and forcing it keeps vLLM off its faster Marlin kernels); nf4 is
    bitsandbytes' 4-bit quantized while loading. int8 has no vLLM path."""
    if s.family == "int8":
        raise SchemeUnavailable(
            s.name,
            "vLLM",
            "vLLM has no int8 for a 16-bit checkpoint (int8 is bitsandbytes' LLM.int8(), a "
            "transformers scheme; vLLM's bitsandbytes path quantizes to 4 bits).",
            "gptq-8bit",
        )
    if s.family == "fp8":
        _check_capability("fp8", g, s.name)
        return [], (
            "FP8: vLLM reads the format from the checkpoint's config.json"
            + (
                "."
                if _capability(g) >= FP8_TENSOR_CORES
                else f"; {g.display} has no FP8 tensor cores (compute capability "
                f"{g.cuda_capability} < {FP8_TENSOR_CORES}), so it runs weight-only through FP8 "
                "Marlin: the memory of 8 bits, 16-bit matmuls."
            )
        )
    method = "bitsandbytes" if s.family == "nf4" else s.made_by
    _check_capability(method, g, s.name)
    if s.family == "nf4":
        return ["--quantization", "bitsandbytes"], "nf4: bitsandbytes 4-bit, quantized as it loads"
    return [], ""


def dtype_flag(s: Scheme, g: GPU) -> tuple[list[str], str]:
    """--dtype for a float scheme; bf16 on a GPU without it (T4, sm 7.5) runs as float16."""
    if not s.dtype:
        return [], ""
    if s.dtype == "bfloat16" and _capability(g) < MIN_CAPABILITY["bfloat16"]:
        return ["--dtype", "half"], (
            f"{g.display} (compute capability {g.cuda_capability}) has no bf16: vLLM refuses "
            "--dtype bfloat16 there, so the plan serves float16 (same bytes, narrower range)."
        )
    return ["--dtype", s.dtype], ""


def vllm_args(c, s, g, tp, pp, context, util, kv_cache_dtype) -> tuple[list[str], list[str]]:
    """(`vllm serve` arguments, reasons): weights, parallelism, context, flags vLLM needs told."""
    w = weights(c, s)
    quant, why_q = quantization_flag(s, g)
    dtype, why_d = dtype_flag(s, g)
    args = [w.source, "--tensor-parallel-size", str(tp)]
    if pp > 1:
        args += ["--pipeline-parallel-size", str(pp), "--distributed-executor-backend", "ray"]
    args += ["--max-model-len", str(context), *quant, *dtype]
    args += ["--gpu-memory-utilization", f"{util:.2f}", "--kv-cache-dtype", kv_cache_dtype]
    args += ["--port", str(PORT)]
    if not w.published:
        args += ["--served-model-name", c.name]
    check("vllm", args)
    reasons = [f"Weights: {w.source} ({w.how})." if w.published else f"Weights: {w.how}"]
    return args, reasons + [r for r in (why_q, why_d) if r]


def llama_server_args(
    c: ModelCard, s: Scheme, gpus: int, context: int, slots: int = 1
) -> list[str]:
    """`llama-server` for a GGUF scheme: every layer on the GPUs (split by layers across them),
    Prometheus metrics on; the key comes from LLAMA_API_KEY in its environment."""
    args = [
        "-m",
        weights(c, s).source,
        "--ctx-size",
        str(context * slots),
        "--parallel",
        str(slots),
    ]
    args += ["--n-gpu-layers", "999"]
    if gpus > 1:
        args += ["--split-mode", "layer"]
    args += ["--host", "0.0.0.0", "--port", str(PORT), "--metrics", "--alias", c.name]
    check("llama-server", args)
    return args


def vllm_gguf_args(c: ModelCard, s: Scheme, tp: int, context: int) -> list[str]:
    """vLLM's own load of the same single-file GGUF, as an alternative to llama-server: the
    tokenizer from the Hub repo (vLLM's GGUF docs advise it: converting a GGUF's vocabulary is slow
    and unstable), no --quantization (vLLM detects a GGUF by its magic bytes; vllm 0.11
    engine/arg_utils.py, transformers_utils/utils.py:21)."""
    args = [weights(c, s).source, "--tokenizer", c.hub_id_instruct or c.hub_id]
    args += ["--tensor-parallel-size", str(tp), "--max-model-len", str(context)]
    args += ["--port", str(PORT), "--served-model-name", c.name]
    check("vllm", args)
    return args


def check(server: str, args: list[str]) -> None:
    """Parse `args` with the server's documented flags; a misspelt flag or a value outside its
    choices raises InvalidSetting."""
    try:
        _parser(server).parse_args(args)
    except (SystemExit, argparse.ArgumentError) as err:
        raise InvalidSetting(
            f"{server} would not start with: {shlex.join(args)} ({err}).",
            "A flag or value the server does not accept: fix the plan (catalog/serve_flags.toml).",
        ) from None


@cache
def _parser(server: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=server, add_help=False, exit_on_error=False)
    if server == "vllm":
        p.add_argument("model_tag")
    for f in catalog.read("serve_flags.toml")["flag"]:
        if f["server"] != server:
            continue
        if f["type"] == "flag":
            p.add_argument(*f["names"], action="store_true")
            continue
        kind = {"int": int, "float": float, "str": str}[f["type"]]
        p.add_argument(*f["names"], type=kind, choices=f.get("choices"))
    p.error = _raise  # type: ignore[method-assign]  # argparse exits on bad input otherwise
    return p


def _raise(message: str):
    raise argparse.ArgumentError(None, message)


def _capability(g: GPU) -> float:
    return float(g.cuda_capability or 0)


def _check_capability(method: str, g: GPU, scheme: str) -> None:
    need = MIN_CAPABILITY.get(method)
    if need and _capability(g) < need:
        raise SchemeUnavailable(
            scheme,
            f"{g.display} under vLLM",
            f"vLLM's {method} kernels need compute capability {need}; it has {g.cuda_capability}.",
            "q4_k_m",
        )
