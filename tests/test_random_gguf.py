"""llamalab.runtime.random_gguf: a llama GGUF with random weights that llama.cpp loads and runs,
labelled as random weights in its metadata, its size what the shape says."""

import pytest

from llamalab.core.errors import InvalidSetting
from llamalab.measure.random_weights import (
    LABEL_KEY,
    RandomShape,
    _tensor_shapes,
    random_gguf,
)

TINY = RandomShape(hidden=64, layers=2, ffn=128, heads=4, kv_heads=2)


def test_bad_shapes_are_refused_with_what_to_choose():
    with pytest.raises(InvalidSetting, match="divide"):
        RandomShape(hidden=100, layers=2, ffn=128, heads=3, kv_heads=1)
    with pytest.raises(InvalidSetting, match="positive"):
        RandomShape(hidden=64, layers=0, ffn=128, heads=4, kv_heads=2)


def test_tensor_shapes_follow_grouped_query_attention():
    s = _tensor_shapes(TINY, vocab=1000)
    assert s["blk.1.attn_k.weight"] == (32, 64) and s["blk.0.attn_q.weight"] == (64, 64)
    assert (
        s["blk.0.ffn_down.weight"] == (64, 128) and "output.weight" not in s
    )  # tied to token_embd
    assert len(s) == 1 + 2 * 9 + 1


@pytest.mark.slow
def test_llama_cpp_loads_it_and_it_says_random_weights(tmp_path):
    import gguf
    import numpy as np

    import llamalab

    path = random_gguf(TINY, tmp_path / "tiny.gguf")
    assert random_gguf(TINY, path) == path  # made once, then reused
    r = gguf.GGUFReader(path)
    assert r.fields[LABEL_KEY].contents() is True
    assert "random weights" in r.fields["general.name"].contents()
    assert "RANDOM WEIGHTS" in r.fields["general.description"].contents()
    assert (
        r.fields["llama.block_count"].contents() == 2
        and r.fields["llama.attention.head_count_kv"].contents() == 2
    )
    vocab = r.fields["llama.vocab_size"].contents()
    params = sum(int(np.prod(s)) for s in _tensor_shapes(TINY, vocab).values())
    assert sum(int(t.n_elements) for t in r.tensors) == params
    m = llamalab.load(str(path), "gguf")
    try:
        g = m.generate("Once upon a time", max_new_tokens=8, min_new_tokens=8)
        assert g.new_tokens == 8 and g.decode_tokens_per_s > 0
        assert m.weights_memory_bytes == pytest.approx(
            sum(int(t.n_bytes) for t in r.tensors), rel=0.05
        )
    finally:
        m.unload()


def test_a_larger_vocabulary_pads_the_token_list_and_qwen2_adds_biases():
    from llamalab.measure.random_weights import _padded

    qwen = RandomShape(hidden=64, layers=2, ffn=128, heads=4, kv_heads=2, vocab=100, arch="qwen2")
    s = _tensor_shapes(qwen, vocab=100)
    assert s["token_embd.weight"] == (100, 64) and s["blk.1.attn_k.bias"] == (32,)
    assert len(s) == len(_tensor_shapes(TINY, vocab=100)) + 2 * 3
    assert _padded("tokenizer.ggml.tokens", ["a", "b"], 4) == ["a", "b", "[PAD2]", "[PAD3]"]
    assert _padded("tokenizer.ggml.merges", ["a b"], 4) == ["a b"]  # not one entry per token
    assert (
        "qwen2" in qwen.file_name
        and "v100" in qwen.file_name
        and TINY.file_name.endswith("-4x2-f16.gguf")
    )
    with pytest.raises(InvalidSetting, match="arch"):
        RandomShape(hidden=64, layers=2, ffn=128, heads=4, kv_heads=2, arch="gpt2")
