"""Perplexity and KL on the embedded model, through transformers and llama.cpp (GGUF), plus its
GPTQ/AWQ checkpoints (built by the `embedded_quantized` fixture when the cache lacks them,
shared with notebook 02)."""

import pytest

import llamalab
from llamalab.measure.quality import Reference, divergence, perplexity, score_against

pytestmark = pytest.mark.slow
N = 384


@pytest.fixture(scope="module")
def fp32():
    m = llamalab.load("default", "fp32")
    yield m
    m.unload()


@pytest.fixture(scope="module")
def reference(fp32):
    r = Reference(fp32, tokens=N, window=256)
    yield r
    r.close()


def test_perplexity_is_labelled(fp32):
    p = perplexity(fp32, tokens=N, window=256)
    assert 1 < p.value < 200 and p.tokens == N - 1
    assert (p.text, p.window, p.stride, p.per) == ("kjv-luke-1-4", 256, 256, "token")
    assert "per token" in p.label and "window 256" in p.label and "Luke" in p.source


def test_fp32_against_itself_is_zero(fp32, reference):
    d = divergence(fp32, reference)
    assert abs(d.kl_mean) < 1e-6 and d.top1_agreement == 1.0
    assert reference.perplexity.value == pytest.approx(
        perplexity(fp32, tokens=N, window=256).value, rel=1e-6
    )


def test_orderings_bf16_vs_4bit(reference, fp32):
    bf16 = llamalab.load("default", "bf16")
    d16 = divergence(bf16, reference)
    bf16.unload()
    nf4 = llamalab.load("default", "nf4")
    d4 = divergence(nf4, reference)
    nf4.unload()
    assert 0 < d16.kl_mean < d4.kl_mean
    assert d4.top1_agreement < d16.top1_agreement <= 1


def test_gguf_perplexity_and_kl_through_llamacpp(reference):
    pytest.importorskip("llama_cpp")
    q = llamalab.load("default", "q4_1")
    try:
        assert q.engine.name == "llama.cpp"
        # llama-quantize's rule: the tied 576-wide embedding is Q8_0 (576 is not a multiple of 256)
        assert abs(q.estimate_error_pct) < 2, q.to_dict()
        p = perplexity(q, tokens=N, window=256)
        d = divergence(q, reference)
        p1, d1 = score_against(q, reference)  # one pass: the same two numbers
    finally:
        q.unload()
    assert (p1.tokens, p1.window, p1.text) == (p.tokens, p.window, p.text)
    assert p1.value == pytest.approx(p.value, rel=1e-5)
    assert (d1.kl_mean, d1.top1_agreement) == pytest.approx((d.kl_mean, d.top1_agreement), rel=1e-5)
    # the embedded bf16/fp32 weights ARE this Q4_1 file dequantized: llama.cpp must agree closely
    assert 1 < p.value < 200
    assert 0 < d.kl_mean < 0.05 and d.top1_agreement > 0.9


def test_kquant_made_here_loads_and_its_estimate_knows_the_fallback(reference):
    pytest.importorskip("llama_cpp")
    q = llamalab.load("default", "q4_k_m")  # converter → F16 → llama_model_quantize, cached
    try:
        assert q.engine.file_type == "q4_k_m"
        # 576-wide rows are not a multiple of 256: most tensors fall back to Q5_0,
        # and the estimate says so
        assert abs(q.estimate_error_pct) < 5, q.to_dict()
        assert any("fallback" in n for n in q.estimate.notes)
        d = divergence(q, reference)
    finally:
        q.unload()
    assert 0 < d.kl_mean < 1 and d.top1_agreement > 0.5


def test_gguf_scheme_must_match_the_file(tmp_path):
    pytest.importorskip("llama_cpp")
    from llamalab import catalog
    from llamalab.runtime.backends import gguf
    from llamalab.runtime.files import embedded

    with pytest.raises(llamalab.InvalidSetting, match="Q4_1") as e:
        gguf.load(str(embedded.gguf_path()), catalog.scheme("q8_0"), "cpu")
    assert "q4_1" in e.value.fix


@pytest.mark.timeout(
    1800
)  # a first run quantizes (AWQ ~4 min on 2 quiet cores, 2–3× that when shared)
@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_embedded_checkpoint_quantized_here_loads(method, embedded_quantized, bf16):
    q = embedded_quantized(method)
    m = llamalab.load("default", method)  # the resolver finds the kit's own checkpoint in the cache
    try:
        assert m.path == q.path
        assert m.weights_memory_bytes < bf16.weights_memory_bytes
        assert "Paris" in m.generate("What is the capital of France?", max_new_tokens=16).text
    finally:
        m.unload()


def test_unload_waits_for_a_running_score_instead_of_freeing_under_it():
    """unload() from another thread while llama.cpp scores on the torch thread: it waits for the
    call (freeing the context under it crashed the process)."""
    pytest.importorskip("llama_cpp")
    from llamalab.core import torch_thread

    q = llamalab.load("default", "q4_1")
    ids = q.engine.tokenize("In the beginning God created the heaven and the earth. " * 30)[:256]
    running = torch_thread.submit(q.engine.logits, ids)
    while not running.running() and not running.done():
        pass
    q.unload()
    assert running.result().shape[0] == len(ids)  # the score finished, then the model was freed
    assert q.engine.llm is None
