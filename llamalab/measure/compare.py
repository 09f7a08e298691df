"""Schemes × prompts → one tidy table of speed, memory, size and quality, all measured here.

Each scheme is loaded alone (the previous one is unloaded first), warmed up with one short
generation, then timed on every prompt with a fixed number of new tokens; then scored on the
held-out text against a reference scheme whose log-probs were computed once beforehand.
"""
from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Callable

from ..errors import LlamalabError

DEFAULT_SCHEMES = ("fp32", "bf16", "fp16", "int8", "nf4", "gptq", "awq", "f16", "q8_0", "q4_1")
DEFAULT_PROMPTS = ("What is the capital of France?",
                   "Explain what quantization does to a neural network in three sentences.")
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.gguf")
COLUMNS = ("model", "scheme", "backend", "engine", "device", "run", "prompt", "text", "prompt_tokens", "new_tokens",
           "ttft_s", "prefill_s", "decode_tok_s", "peak_rss_bytes", "peak_memory_kind", "load_s",
           "load_rss_delta_bytes", "weights_disk_bytes", "weights_memory_bytes", "quantized_at", "perplexity",
           "ppl_text", "ppl_tokens", "ppl_context", "ppl_stride", "kl_vs_reference", "top1_vs_reference",
           "reference", "quality_s", "error")


def disk_bytes(path: str) -> int:
    """Bytes of the weight files a model was loaded from (a .gguf file, or a folder's weight files)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for pattern in WEIGHT_FILES for f in p.glob(pattern))


def compare(model="default", schemes=DEFAULT_SCHEMES, prompts=DEFAULT_PROMPTS, *, max_new_tokens: int = 64,
            fixed_length: bool = True, repeats: int = 1, reference: str | None = "bf16", quality: bool = True,
            tokens: int = 1024, context: int = 512, device: str = "cpu", quantize_missing: bool = True,
            on_row: Callable[[dict], None] | None = None, on_status: Callable[[str], None] | None = None):
    """A pandas DataFrame with one row per (scheme, prompt, run); a scheme that fails gets one row
    with `error` set (and the reason), so one missing backend never hides the others.

    Units: seconds (_s), bytes (_bytes), tokens/s (_tok_s); perplexity per token on `ppl_text`;
    KL in nats/token vs `reference`. fixed_length forces max_new_tokens new tokens (comparable speed).
    """
    import pandas as pd
    from .quality import Reference
    status = on_status or (lambda msg: None)
    ref = None
    if quality and reference:
        status(f"reference: {reference} log-probs on the held-out text")
        ref = _with_model(model, reference, device, quantize_missing, lambda m: Reference(m, tokens=tokens,
                                                                                         context=context))
    rows = []
    for scheme in schemes:
        status(f"{scheme}: loading")
        rows += _scheme_rows(model, scheme, prompts, device, max_new_tokens, fixed_length, repeats, ref, quality,
                             tokens, context, quantize_missing, on_row, status)
    if ref is not None:
        ref.close()
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _load(model, scheme, device, quantize_missing):
    from .. import catalog
    from ..errors import ModelNotCached
    from ..runtime import load
    try:
        return load(model, scheme, device=device)
    except ModelNotCached:
        s = catalog.scheme(scheme)
        if not (quantize_missing and s.family in ("gptq", "awq")):
            raise
        from ..quantize import quantize
        quantize(model, s.family, bits=int(s.bits))
        return load(model, scheme, device=device)


def _with_model(model, scheme, device, quantize_missing, work):
    m = _load(model, scheme, device, quantize_missing)
    try:
        return work(m)
    finally:
        m.unload()
        gc.collect()


def _scheme_rows(model, scheme, prompts, device, max_new_tokens, fixed_length, repeats, ref, quality, tokens,
                 context, quantize_missing, on_row, status) -> list[dict]:
    base = {"model": str(model), "scheme": scheme, "device": device}
    try:
        m = _load(model, scheme, device, quantize_missing)
    except LlamalabError as e:
        row = {**base, "error": str(e)}
        if on_row:
            on_row(row)
        return [row]
    try:
        base = _facts(m, base)
        m.generate(prompts[0], max_new_tokens=4)            # warm-up: first-call costs are not speed
        rows = []
        for run in range(repeats):
            for prompt in prompts:
                status(f"{scheme}: generating")
                g = m.generate(prompt, max_new_tokens=max_new_tokens,
                               min_new_tokens=max_new_tokens if fixed_length else 0)
                rows.append({**base, "run": run, "prompt": prompt, "text": g.text, "prompt_tokens": g.prompt_tokens,
                             "new_tokens": g.tokens, "ttft_s": g.ttft_s, "prefill_s": g.prefill_s,
                             "decode_tok_s": g.decode_tokens_per_s, "peak_rss_bytes": g.peak_memory_bytes,
                             "peak_memory_kind": g.peak_memory_kind})
                if on_row:
                    on_row(rows[-1])
        if quality:
            status(f"{scheme}: perplexity and KL")
            q = _quality(m, ref, tokens, context)
            rows = [{**r, **q} for r in rows]
        return rows
    except LlamalabError as e:
        return [{**base, "error": str(e)}]
    finally:
        m.unload()
        gc.collect()


def _facts(m, base: dict) -> dict:
    engine = "llama.cpp" if type(m.engine).__name__ == "LlamaCppEngine" else "transformers"
    quantized_at = "file" if m.scheme.family in ("gptq", "awq", "gguf") else (
        "load" if m.scheme.quantized else "none (dtype cast at load)")
    return {**base, "scheme": m.scheme.name, "backend": m.backend, "engine": engine, "load_s": m.load_seconds,
            "load_rss_delta_bytes": m.memory_delta_bytes, "weights_disk_bytes": disk_bytes(m.path),
            "weights_memory_bytes": m.footprint_bytes, "quantized_at": quantized_at}


def _quality(m, ref, tokens: int, context: int) -> dict:
    from .quality import divergence, perplexity
    t0 = time.perf_counter()
    if ref is not None:
        d = divergence(m, ref)
        p = perplexity(m, tokens=len(ref.ids), context=ref.context, stride=ref.stride)
        out = {"kl_vs_reference": d.kl_mean, "top1_vs_reference": d.top1_agreement, "reference": d.reference}
    else:
        p = perplexity(m, tokens=tokens, context=context)
        out = {}
    return {**out, "perplexity": p.value, "ppl_text": p.text, "ppl_tokens": p.tokens, "ppl_context": p.context,
            "ppl_stride": p.stride, "quality_s": time.perf_counter() - t0}


def summary(df):
    """One row per scheme: medians over prompts and runs (errors kept as a column)."""
    num = ["ttft_s", "prefill_s", "decode_tok_s", "peak_rss_bytes", "load_s", "weights_disk_bytes",
           "weights_memory_bytes", "perplexity", "kl_vs_reference", "top1_vs_reference"]
    order = list(dict.fromkeys(df["scheme"]))
    g = df.groupby("scheme", sort=False)
    out = g[num].median(numeric_only=True)
    out["backend"] = g["backend"].first()
    out["engine"] = g["engine"].first()
    out["error"] = g["error"].first()
    return out.reindex(order).reset_index()
