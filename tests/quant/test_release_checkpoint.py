"""A quantize-on-load (int8, nf4) leaves no mapping of the source checkpoint behind: the tensors it
kept unquantized (embedding, norms) are copied out of the memory-mapped safetensors file, which then
closes, so file-backed RSS no longer holds the whole bf16 file (2 GB at Llama 3.2 1B's shape)."""

from dataclasses import replace

import pytest

import llamalab
from llamalab.catalog import card
from llamalab.core import memory
from llamalab.measure.random_checkpoint import random_checkpoint
from llamalab.runtime import runs
from llamalab.runtime.backends import hf

TINY = dict(hidden=256, layers=2, intermediate=768, heads=4, kv_heads=2, head_dim=64, vocab=49152)


@pytest.fixture(scope="module")
def tiny_random(tmp_path_factory):
    c = replace(card("llama-3.2-1b"), name="tiny-random-llama", **TINY)
    return random_checkpoint(c, tmp_path_factory.mktemp("release") / "tiny-random-llama")


@pytest.mark.parametrize("scheme", ["int8", "nf4"])
def test_no_mapping_of_the_checkpoint_is_left_after_a_quantize_on_load(tiny_random, scheme):
    if not runs(llamalab.scheme(scheme), "cpu"):
        pytest.skip(f"{scheme} does not run here")
    m = llamalab.load(str(tiny_random), scheme, device="cpu")
    try:
        assert memory.mapped_ranges(tiny_random / "model.safetensors") == []
        model = m.engine.model
        assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied after the copy
        g = m.generate("Once upon a time", max_new_tokens=3, min_new_tokens=3)
        assert g.new_tokens == 3 and g.peak_anon_bytes > 0 and g.peak_file_bytes is not None
        assert m.load_anon_bytes is not None and m.load_file_bytes is not None
    finally:
        m.unload()


def test_without_the_release_the_mapping_stays(tiny_random, monkeypatch):
    """The check above can fail: skip the release and the int8 load keeps the file mapped."""
    monkeypatch.setattr(hf, "release_checkpoint", lambda model, path: 0)
    m = llamalab.load(str(tiny_random), "int8", device="cpu")
    try:
        assert memory.mapped_ranges(tiny_random / "model.safetensors") != []
    finally:
        m.unload()
