"""The estimator terms measured at real shapes (benchmarks/real_shapes.py, random weights at 1B-3B):
CPU inference over weights quantized while loading holds dequantized copies, and llama.cpp without
flash attention holds a prefill chunk's attention scores over the whole context, in fp32."""

from llamalab import estimate
from llamalab.catalog import card, linear_shapes
from llamalab.plan.estimator import assumptions


def test_quantize_on_load_schemes_hold_dequantized_layers_on_a_cpu():
    c = card("llama-3.2-1b")
    per_layer = sum(i * o * n for i, o, n in linear_shapes(c)) / c.layers
    layers = assumptions()["runtime"]["cpu_dequant_layers"]
    int8 = estimate(c, "int8", 64, device="cpu")
    assert int8.breakdown["cpu_slack"] == int(per_layer * 2 * layers)  # torchao casts to bf16
    nf4 = estimate(c, "nf4", 64, device="cpu")
    assert (
        nf4.breakdown["cpu_slack"] >= int8.breakdown["cpu_slack"]
    )  # fp32 without bf16 instructions
    assert "cpu_slack" not in estimate(c, "int8", 64, device="cuda").breakdown
    assert "cpu_slack" not in estimate(c, "bf16", 64, device="cpu").breakdown


def test_llama_cpp_holds_a_chunks_attention_scores_over_the_context():
    c = card("llama-3.2-1b")
    act = lambda ctx: estimate(c, "q8_0", ctx, device="cpu").breakdown["activations"]
    chunk = assumptions()["engines"]["llama.cpp_prefill_tokens"]
    scores = lambda ctx: chunk * ctx * c.heads * 4
    assert act(4096) - act(2048) == scores(4096) - scores(2048)  # only the scores grow past a chunk
    assert act(2048) > 2048 * 512 * 32 * 4  # the 134 MB of scores llama.cpp reserves at n_ctx 2048
    hf = lambda ctx: estimate(c, "bf16", ctx, device="cpu").breakdown["activations"] - c.vocab * 4
    assert hf(4096) == 2 * hf(2048)  # transformers: linear in the prompt, no scores (SDPA)
