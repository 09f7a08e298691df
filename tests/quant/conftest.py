"""Fixtures for the quantization tests: a tiny Llama (all dims multiples of 128) with the embedded
model's tokenizer, trained for a few steps so its distributions are not uniform (kept in the
cache), and a session-scoped set of its quantized checkpoints, removed from LLAMALAB_CACHE
afterwards; and the
embedded model's own GPTQ/AWQ checkpoints, built here when the cache lacks them and kept there."""

import hashlib
import inspect
import shutil
from pathlib import Path

import pytest

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)


def build_tiny_llama(out: Path, tokenizer_dir: Path, steps: int = 40, seed: int = 0) -> Path:
    """LlamaConfig hidden 256, FFN 768, 2 layers, 4 heads / 2 KV heads; a few Adam steps on the
    bundled calibration text. Saved as bf16 safetensors with the tokenizer files."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llamalab.data import texts

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    ids = torch.tensor(tok(texts.calibration().text)["input_ids"][: 64 * 64]).view(64, 64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = ids[(step * 8) % 64 : (step * 8) % 64 + 8]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.to(torch.bfloat16).save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, out / name)
    return out


@pytest.fixture(scope="session")
def tiny_llama(embedded_dir):
    """Built once per version of its recipe (and of torch and transformers) and kept in
    LLAMALAB_CACHE/test-models: its 40 training steps are two minutes here, and the same seed on
    the same versions builds the same weights."""
    import torch
    import transformers

    from llamalab.core.paths import atomic_dir, cache_dir

    recipe = inspect.getsource(build_tiny_llama) + torch.__version__ + transformers.__version__
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    out = cache_dir() / "test-models" / f"tiny-llama-{key}"
    if not (out / "model.safetensors").is_file():
        with atomic_dir(out, done=lambda p: (p / "model.safetensors").is_file(), replace=True) as t:
            build_tiny_llama(t, Path(embedded_dir))
    return out


@pytest.fixture(scope="session")
def tiny_quantized(tiny_llama):
    """The tiny model quantized through the kit: GPTQ 4-bit, GPTQ 8-bit,
    AWQ 4-bit (small calibration)."""
    import llamalab

    out = {
        name: llamalab.quantize(
            str(tiny_llama), scheme, bits=bits, samples=8, seq_len=64, progress=False
        )
        for name, scheme, bits in (
            ("gptq-4bit", "gptq", 4),
            ("gptq-8bit", "gptq", 8),
            ("awq-4bit", "awq", 4),
        )
    }
    yield out
    for q in out.values():
        shutil.rmtree(q.path, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_quantized(embedded_dir):
    """`embedded_quantized("gptq" | "awq")` → the embedded model quantized with the kit's default
    settings — the ones notebook 02 uses, so either reuses the other's checkpoint. Built on first
    use (GPTQ ~1 min, AWQ ~4 min on 2 cores) and kept in LLAMALAB_CACHE:
    later runs find it there."""
    import llamalab

    return lambda method: llamalab.quantize("default", method, progress=False)
