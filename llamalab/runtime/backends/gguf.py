"""GGUF files through llama.cpp in-process (llama-cpp-python): the embedded model's own Q4_1 file,
or F16 / Q8_0 / k-quant files made with llama.cpp's own tools (llamalab.convert_gguf)."""

from __future__ import annotations

from pathlib import Path

from ...catalog import Scheme
from ...core.errors import InvalidSetting
from . import hf, missing

INSTALL = 'pip install "llamalab[llamacpp]"   # builds llama.cpp from source (~6 min on 2 cores)'
CUDA_INSTALL = (
    'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python'
)
REQUIRES = {
    "cpu": [("llama_cpp", INSTALL)],
    "cuda": [("llama_cpp", 'CMAKE_ARGS="-DGGML_CUDA=on" ' + INSTALL)],
}

# Weight types llama.cpp's CPU backend repacks into its own interleaved layout while loading
# (measured here, AVX2, llama-cpp-python 0.3.36: "repack tensor ... with q4_K_8x8" / q4_0_8x8;
# q4_1, q5_k_m, q6_k and q8_0 are used in place). Read through a file mapping, such a file stays
# resident twice: the copy, and the mapped pages the kernel keeps (in whole large folios around
# the tensors used in place): a Q4_K_M of Llama 3.2 1B took 1.73 GB of RSS for 1.27 GB live, of
# Qwen2.5 1.5B 1.59 GB after dropping the mapped pages, 1.08 GB read without a mapping.
REPACKED = ("q4_0", "q4_k_m")


def available(device: str) -> tuple[bool, str]:
    reason = missing(REQUIRES, device)
    if reason or not device.startswith("cuda"):
        return not reason, reason
    import llama_cpp

    if hf.cuda_reason(device):
        return False, hf.cuda_reason(device)
    if not llama_cpp.llama_supports_gpu_offload():
        return (
            False,
            f"this llama-cpp-python build has no GPU offload; rebuild it with {CUDA_INSTALL}",
        )
    return True, ""


def load(
    path: str,
    scheme: Scheme,
    device: str,
    trust_remote_code: bool = False,
    n_threads: int | None = None,
    context: int | None = None,
    tokenizer=None,
    lora_path=None,
    **_,
):
    """Load the GGUF at `path` with a `context`-token window; its weight type (general.file_type)
    must match the scheme asked for. `lora_path`: a GGUF LoRA adapter to apply (checked to fit)."""
    from ...engines.llamacpp import DEFAULT_CONTEXT, LlamaCppEngine
    from ..files.gguf import tokenizer_for

    p = Path(path)
    if not (p.is_file() and p.suffix == ".gguf"):
        raise InvalidSetting(
            f"{p} is not a .gguf file.", "Pass a GGUF file, or a folder holding one."
        )
    cpu = not device.startswith("cuda")
    if lora_path is not None:
        from ..files.lora import check_fits

        check_fits(lora_path, p)
    engine = LlamaCppEngine(
        str(p),
        tokenizer_for(p, tokenizer),
        n_threads=n_threads,
        n_ctx=context or DEFAULT_CONTEXT,
        n_gpu_layers=0 if cpu else -1,
        use_mmap=not (cpu and scheme.name in REPACKED),
        lora_path=None if lora_path is None else str(lora_path),
    )
    if engine.file_type != scheme.name:
        got = engine.file_type
        engine.unload()
        raise InvalidSetting(
            f"{p.name} holds {got.upper()} weights, not {scheme.name.upper()}.",
            f"Load it with scheme={got!r}.",
        )
    return engine
