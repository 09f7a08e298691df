"""GGUF files through llama.cpp in-process (llama-cpp-python): the embedded model's own Q4_1 file,
or F16 / Q8_0 / k-quant files made with llama.cpp's own tools (llamalab.quantize.gguf)."""
from __future__ import annotations

from pathlib import Path

from ...catalog import Scheme
from ...errors import InvalidSetting
from . import installed

INSTALL = 'CMAKE_ARGS="-DGGML_NATIVE=ON" pip install "llama-cpp-python>=0.3.30,<0.4"   # builds llama.cpp (~6 min on 2 cores)'
REQUIRES = {"cpu": [("llama_cpp", INSTALL)], "cuda": [("llama_cpp", 'CMAKE_ARGS="-DGGML_CUDA=on" ' + INSTALL[30:])]}


def available(device: str) -> tuple[bool, str]:
    if not installed("llama_cpp"):
        return False, f"llama-cpp-python is not installed ({INSTALL})"
    if device.startswith("cuda"):
        import llama_cpp
        import torch
        if not torch.cuda.is_available():
            return False, "no CUDA device visible to torch"
        if not llama_cpp.llama_supports_gpu_offload():
            return False, ("this llama-cpp-python build has no GPU offload; rebuild it with "
                           'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python')
    return True, ""


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, n_threads: int | None = None,
         n_ctx: int | None = None, tokenizer=None, **_):
    """Load the GGUF at `path`; its weight type (general.file_type) must match the scheme asked for."""
    from ..llamacpp import DEFAULT_CTX, LlamaCppEngine, tokenizer_for
    p = Path(path)
    if not (p.is_file() and p.suffix == ".gguf"):
        raise InvalidSetting(f"{p} is not a .gguf file.", "Pass a GGUF file, or a folder holding one.")
    engine = LlamaCppEngine(str(p), tokenizer_for(p, tokenizer), n_threads=n_threads, n_ctx=n_ctx or DEFAULT_CTX,
                            n_gpu_layers=-1 if device.startswith("cuda") else 0)
    if engine.file_type != scheme.name:
        got = engine.file_type
        engine.unload()
        raise InvalidSetting(f"{p.name} holds {got.upper()} weights, not {scheme.name.upper()}.",
                             f"Load it with scheme={got!r}.")
    return engine
