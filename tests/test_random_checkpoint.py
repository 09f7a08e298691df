"""llamalab.measure.random_checkpoint: a transformers checkpoint of a catalog model's shape with
random bf16 weights, written chunk by chunk, labelled as random weights, its tensors exactly the
ones transformers builds for that config (checked at tiny shapes, on the meta device)."""

import json
import struct
from dataclasses import replace

import pytest

from llamalab.catalog import card
from llamalab.core.errors import InvalidSetting
from llamalab.measure import random_checkpoint as rc


def tiny(name: str, **shape):
    sizes = dict(hidden=128, layers=2, intermediate=256, heads=4, kv_heads=2, head_dim=32)
    return replace(card(name), name=f"tiny-{name}", vocab=49152, **{**sizes, **shape})


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


@pytest.mark.parametrize("name", ["llama-3.2-1b", "qwen2.5-1.5b"])
def test_the_tensors_are_the_ones_transformers_builds_for_the_config(tmp_path, name):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = rc.random_checkpoint(tiny(name), tmp_path / name)
    cfg = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    written = {
        k: v["shape"] for k, v in header(folder / "model.safetensors").items() if "__" not in k
    }
    if cfg.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    assert written == expected
    assert all(
        v["dtype"] == "BF16"
        for k, v in header(folder / "model.safetensors").items()
        if "__" not in k
    )
    with open(folder / "model.safetensors", "rb") as f:
        data_start = 8 + struct.unpack("<Q", f.read(8))[0]
    elements = sum(int(torch.tensor(shape).prod()) for shape in written.values())
    assert (folder / "model.safetensors").stat().st_size == data_start + 2 * elements


def test_values_are_finite_norms_one_and_it_is_labelled_and_reused(tmp_path):
    from safetensors.torch import load_file

    folder = rc.random_checkpoint(tiny("llama-3.2-1b"), tmp_path / "m")
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert rc.random_checkpoint(tiny("llama-3.2-1b"), folder) == folder  # made once, then reused
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert (
        rc.is_random(folder) and json.loads((folder / rc.LABEL_FILE).read_text())["random_weights"]
    )
    assert "random weights" in (folder / "README.md").read_text().lower()
    assert header(folder / "model.safetensors")["__metadata__"]["llamalab"] == rc.LABEL
    assert (folder / "tokenizer.json").is_file() and json.loads(
        (folder / "config.json").read_text()
    )["vocab_size"] == 49152
    weights = load_file(folder / "model.safetensors")
    assert (weights["model.norm.weight"] == 1).all()
    q = weights["model.layers.0.self_attn.q_proj.weight"].float()
    assert q.isfinite().all() and 0.015 < q.std().item() < 0.025 and abs(q.mean().item()) < 0.002


def test_chunks_bound_the_memory_and_unknown_families_are_refused(monkeypatch):
    import numpy as np

    monkeypatch.setattr(rc, "CHUNK", 1000)
    chunks = list(rc._values("w", 2500, 2, np.random.default_rng(0)))
    assert [len(c) for c in chunks] == [1000, 1000, 500] and chunks[0].dtype == np.uint16
    ones = next(rc._values("model.norm.weight", 4, 1, None))
    assert (ones == 0x3F80).all()  # 1.0 in bf16
    with pytest.raises(InvalidSetting, match="knows"):
        rc.random_checkpoint("mixtral-8x7b")


def test_the_gguf_shape_is_the_same_model_in_llama_cpp_terms():
    s = rc.gguf_shape("qwen2.5-1.5b")
    assert (s.hidden, s.layers, s.ffn, s.heads, s.kv_heads) == (1536, 28, 8960, 12, 2)
    assert s.vocab == 151936 and s.arch == "qwen2" and rc.gguf_shape("llama-3.2-1b").arch == "llama"
    with pytest.raises(InvalidSetting, match="tied"):
        rc.gguf_shape("llama-3.1-8b")
