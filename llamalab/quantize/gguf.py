"""GGUF files made with llama.cpp's own tools: its converter (`convert_hf_to_gguf.py`) writes F16 and
Q8_0; other types (k-quants, Q4_0/Q4_1) come from that F16 file through `llama_model_quantize`.

    from llamalab.quantize import gguf
    gguf.convert("default", "q8_0")          # a cached .gguf path

The writer lives one floor down, in `llamalab.runtime.gguf_writer`, because `llamalab.load(model,
"q8_0")` makes the file on first use and the runtime never imports `quantize`; this is its public face.
"""
from __future__ import annotations

from ..runtime.gguf_writer import (OUTTYPES, QUANTIZED, WRITABLE, convert, converter_dir, ensure_converter,
                                   output_path)

__all__ = ["convert", "ensure_converter", "converter_dir", "output_path", "OUTTYPES", "QUANTIZED", "WRITABLE"]
