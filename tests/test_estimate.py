"""The estimator against hand-checked arithmetic, published checkpoint sizes, and properties."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llamalab
from llamalab import InvalidSetting, best_scheme, estimate, max_context, roofline, sizing
from llamalab.catalog import card, linear_shapes
from llamalab.plan.estimator import (
    kv_cache_bytes,
    lora_params,
    requirements_table,
    weight_bytes,
)

GiB = 2**30


def test_llama_8b_bf16_weights_and_128k_kv_cache():
    e = estimate("llama-3.1-8b", "bf16", context=131072)
    assert e.breakdown["weights"] == 8_030_261_248 * 2  # ≈ 16.06 GB
    assert e.breakdown["kv_cache"] == 2 * 32 * 8 * 128 * 2 * 131072 == 16 * GiB
    assert e.total_bytes == sum(e.breakdown.values())


def test_4bit_estimate_matches_published_checkpoint_size():
    # hugging-quants/Meta-Llama-3.1-8B-Instruct-GPTQ-INT4 and -AWQ-INT4: 5.73 GB of safetensors
    # (4-bit linears + fp16 scales/zeros per 128 weights + 16-bit embeddings and lm_head).
    for s in ("gptq-4bit", "awq-4bit"):
        assert estimate("llama-3.1-8b", s).breakdown["weights"] == pytest.approx(5.73e9, rel=0.02)


def test_405b_fp16_is_810_gb_and_400gb_only_holds_at_8bit():
    fp16 = estimate("llama-3.1-405b", "fp16").breakdown["weights"]
    int8 = estimate("llama-3.1-405b", "int8").breakdown["weights"]
    assert fp16 == pytest.approx(811.7e9, rel=0.001)
    assert 400e9 < int8 < 420e9
    assert estimate("llama-3.1-405b", "fp16").devices_needed("h100-80gb") >= 11


def test_bits_per_weight_include_scales():
    assert llamalab.scheme("gptq-4bit").bits_per_weight() == pytest.approx(4 + 20 / 128)
    assert (
        llamalab.scheme("q4_0").bits_per_weight() == 4.5
        and llamalab.scheme("q8_0").bits_per_weight() == 8.5
    )
    assert llamalab.scheme("q4_1").bits_per_weight() == 5.0
    # GGUF Q4_0/Q8_0 of Llama-3.1-8B-Instruct as published (bartowski): 4.66 GB and 8.54 GB; the
    # Q4_0 file keeps its 4096-wide output matrix in Q6_K (llama-quantize's rule)
    w = weight_bytes(card("llama-3.1-8b"), llamalab.scheme("q4_0"))
    assert w["output"] == 128256 * 4096 * 210 // 256 and sum(w.values()) == pytest.approx(
        4.66e9, rel=0.01
    )
    assert estimate("llama-3.1-8b", "q8_0").breakdown["weights"] == pytest.approx(8.54e9, rel=0.01)
    g64 = estimate("smollm2-135m", "gptq-4bit", group_size=64).breakdown["weights"]
    g128 = estimate("smollm2-135m", "gptq-4bit").breakdown["weights"]
    assert g64 > g128


def test_moe_keeps_every_expert_resident():
    e = estimate("mixtral-8x7b", "bf16")
    assert e.breakdown["weights"] == pytest.approx(card("mixtral-8x7b").params * 2)
    assert any("experts stay resident" in n for n in e.notes)
    r = roofline("mixtral-8x7b", "bf16", "h100-80gb", context=1)
    assert (
        r["bytes_per_step"] < e.breakdown["weights"] * 0.35
    )  # only ~12.9B of 46.7B read per token


def test_training_modes():
    full = estimate("llama-3.1-8b", "bf16", 2048, mode="full")
    p = card("llama-3.1-8b").params
    assert full.breakdown["gradients"] == p * 2
    assert full.breakdown["optimizer"] == p * 12  # Adam m, v + fp32 master copy
    assert lora_params(card("llama-3.1-8b"), 16) == 41_943_040  # all-linear r=16, a known figure
    lora = estimate("llama-3.1-8b", "bf16", 2048, mode="lora", device="cuda")
    qlora = estimate("llama-3.1-8b", "bf16", 2048, mode="qlora", device="cuda")
    full = estimate("llama-3.1-8b", "bf16", 2048, mode="full", device="cuda")
    assert qlora.scheme == "nf4" and qlora.total_bytes < lora.total_bytes < full.total_bytes
    assert lora.breakdown["adapters"] == 41_943_040 * 4 and lora.breakdown["kv_cache"] == 0
    with pytest.raises(InvalidSetting, match="Full fine-tuning"):
        estimate("llama-3.1-8b", "gptq-4bit", mode="full")


@pytest.mark.parametrize("bf16_instructions", [True, False])
def test_nf4_on_cpu_is_counted_in_the_dtype_it_computes_in(monkeypatch, bf16_instructions):
    """The nf4 backend computes in bf16 on a CPU with bf16 instructions and in fp32 without
    (core.hardware.compute_dtype): the estimate's kept tensors and dequantized copies follow (its
    activations did not grow measurably); a GPU always computes in bf16."""
    from llamalab.core import hardware

    monkeypatch.setattr(hardware, "cpu_bf16", lambda: bf16_instructions)
    assert hardware.compute_dtype("cpu") == ("bfloat16" if bf16_instructions else "float32")
    assert hardware.compute_dtype("cuda:0") == "bfloat16"
    cpu = estimate("default", "nf4", 64, 2, "qlora", device="cpu")
    gpu = estimate("default", "nf4", 64, 2, "qlora", device="cuda")
    c = card("default")
    kept = c.embedding_params + (2 * c.layers + 1) * c.hidden
    extra = cpu.breakdown["weights"] - gpu.breakdown["weights"]
    assert extra == (kept * 2 if not bf16_instructions else 0)
    linears = sum(i * o * n for i, o, n in linear_shapes(c))
    assert cpu.breakdown["cpu_slack"] >= linears * (2 if bf16_instructions else 4)


def test_lora_targets_count_only_the_adapted_linears():
    assert (
        lora_params(card("llama-3.1-8b"), 16, "guide") == 6_815_744
    )  # peft's count for q_proj,v_proj r=16
    # SmolLM2-135M: the trainable parameters peft reported in this kit's runs (guide 921,600;
    # all-linear 4,884,480)
    assert lora_params(card("default"), 16, "guide") == 921_600
    assert lora_params(card("default"), 16, "all-linear") == 4_884_480
    same = [
        estimate("default", "fp32", 64, 8, "lora", device="cpu", target_modules=t).total_bytes
        for t in ("guide", "q_proj,v_proj", ["v_proj", "model.layers.0.self_attn.q_proj"])
    ]
    assert len(set(same)) == 1
    everything = estimate(
        "default", "fp32", 64, 8, "lora", device="cpu", target_modules="all-linear"
    )
    assert same[0] < everything.total_bytes
    full = estimate("default", "fp32", 64, 8, "full", device="cpu", target_modules="guide")
    assert full.total_bytes == estimate("default", "fp32", 64, 8, "full", device="cpu").total_bytes
    # CPU full fine-tuning: the step's extra fp32 copy shows only where it exceeds the (freed)
    # activations
    small = estimate("default", "fp32", 55, 2, "full", device="cpu")
    big = estimate("default", "fp32", 55, 64, "full", device="cpu")
    p = card("default").params
    assert small.breakdown["cpu_slack"] + small.breakdown["activations"] == p * 4
    assert (
        big.breakdown["cpu_slack"] == 0
        and estimate("default", "fp32", 55, 2, "full", device="cuda").breakdown["cpu_slack"] == 0
    )
    for bad in ("qkv_proj", "", ["q_proj", 3]):
        with pytest.raises(InvalidSetting, match="target_modules") as e:
            estimate("default", "fp32", 64, mode="lora", target_modules=bad)
        assert "all-linear" in e.value.fix


def test_fits_max_context_and_best_scheme():
    e = estimate("llama-3.1-8b", "bf16", 8192, device="cuda")
    assert e.fits("h100-80gb") and e.fits("a100-40gb") and not e.fits("t4")
    assert e.fits("2x t4") is True or e.devices_needed("t4") > 1
    n = max_context(
        "llama-3.1-8b", "bf16", "rtx-4090"
    )  # a catalog GPU: its CUDA runtime is counted
    assert 0 < n < 131072
    assert estimate("llama-3.1-8b", "bf16", n, device="cuda").fits("rtx-4090")
    assert not estimate("llama-3.1-8b", "bf16", n + 1, device="cuda").fits("rtx-4090")
    assert best_scheme("llama-3.1-70b", "h100-80gb", 4096) in ("fp8", "int8", "gptq-8bit", "q8_0")
    assert best_scheme("llama-3.1-405b", "rtx-4090") is None
    assert best_scheme("llama-3.1-8b", "h200") == "fp32"


def test_sizing_is_the_estimate_and_its_answers_for_one_gpu():
    p = sizing("llama-3.1-8b", "int8", "rtx-4090", 32768, batch=2)
    assert p.estimate == estimate("llama-3.1-8b", "int8", 32768, 2, device="cuda")
    assert p.fits == p.estimate.fits("rtx-4090") and p.devices_needed == p.estimate.devices_needed(
        "rtx-4090"
    )
    assert p.max_context == max_context("llama-3.1-8b", "int8", "rtx-4090", 2, device="cuda")
    assert p.best_scheme == best_scheme("llama-3.1-8b", "rtx-4090", 32768, 2, device="cuda")
    assert "h200" in p.fits_on and "t4" not in p.fits_on
    assert p.to_dict()["max_context"] == p.max_context
    cpu = sizing(
        "llama-3.1-8b", "int8", 24 * 10**9, 4096, device="cpu"
    )  # a budget in bytes, CPU overhead
    assert cpu.estimate.device == "cpu" and not cpu.fits  # the bf16 copy int8 loads from


def test_the_chosen_gpu_is_called_gpu():
    assert max_context("llama-3.1-8b", "bf16", gpu="rtx-4090") == max_context(
        "llama-3.1-8b", "bf16", "rtx-4090"
    )
    assert best_scheme("llama-3.1-70b", gpu="h100-80gb") == best_scheme(
        "llama-3.1-70b", "h100-80gb"
    )
    assert roofline("llama-3.1-8b", gpu="h200")["gpu"] == "h200"
    assert estimate("llama-3.1-8b").fits(gpu="2x t4") == estimate("llama-3.1-8b").fits(
        "t4", count=2
    )


def test_roofline_is_bandwidth_over_bytes():
    r = roofline("llama-3.1-70b", "bf16", "h100-80gb", context=1)
    assert r["tokens_per_s_per_sequence"] == pytest.approx(3350e9 / r["bytes_per_step"])
    assert 20 < r["tokens_per_s_per_sequence"] < 30


def test_requirements_table_has_every_row():
    df = requirements_table()
    assert len(df) == 9 * 3 and (df["total_gb"] > df["weights_gb"]).all()
    row = df[(df.model == "llama-3.1-8b") & (df.scheme == "fp16")].iloc[0]
    assert row.smallest_single_gpu in ("rtx-3090", "rtx-4090", "a10", "l4")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(context=0),
        dict(context=-5),
        dict(context=1.5),
        dict(batch=0),
        dict(mode="pretrain"),
        dict(kv_dtype="fp12"),
        dict(group_size=0),
        dict(device="tpu"),
        dict(lora_rank=0),
        dict(gradient_checkpointing="yes"),
        dict(context=True),
        dict(scheme=4),
    ],
)
def test_bad_inputs_say_what_to_do(kwargs):
    with pytest.raises(InvalidSetting) as e:
        estimate("llama-3.1-8b", **kwargs)
    assert e.value.fix


def test_auto_is_this_machines_kind_and_a_catalog_gpu_counts_cuda():
    from llamalab.core.hardware import default_device

    assert estimate("llama-3.1-8b").device == default_device()
    assert sizing("llama-3.1-8b", "bf16", "h100-80gb").estimate.device == "cuda"
    assert sizing("default", "bf16", "this").estimate.device == default_device()


def test_estimator_does_not_import_torch():
    code = (
        "import sys, llamalab; llamalab.estimate('llama-3.1-8b'); "
        "llamalab.max_context('qwen2.5-7b', 'int8', 'l4'); llamalab.requirements_table(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


MODELS = [
    "llama-3.1-8b",
    "mixtral-8x7b",
    "gemma-2-9b",
    "falcon-7b",
    "phi-3-mini",
    "smollm2-135m",
    "qwen2.5-72b",
]
SCHEMES = llamalab.catalog.scheme_names()


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(MODELS),
    st.sampled_from(SCHEMES),
    st.integers(1, 200_000),
    st.integers(1, 64),
    st.sampled_from(["inference", "lora", "qlora"]),
)
def test_more_context_or_batch_never_needs_less(model, s, context, batch, mode):
    e = estimate(model, s, context, batch, mode)
    assert all(v >= 0 for v in e.breakdown.values())
    assert estimate(model, s, context + 1, batch, mode).total_bytes >= e.total_bytes
    assert estimate(model, s, context, batch + 1, mode).total_bytes >= e.total_bytes


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), st.integers(1, 100_000))
def test_fewer_bits_never_more_weight_bytes(model, context):
    w = [
        estimate(model, s, context).breakdown["weights"]
        for s in ("fp32", "bf16", "int8", "gptq-4bit")
    ]
    assert w == sorted(w, reverse=True)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(["bf16", "int8", "q4_k_m"]), st.integers(2, 200))
def test_max_context_is_the_boundary(model, s, budget_gb):
    n = max_context(model, s, budget_gb * 10**9)
    if 0 < n < card(model).context:
        assert (
            estimate(model, s, n).peak_bytes
            <= budget_gb * 10**9
            < estimate(model, s, n + 1).peak_bytes
        )


def test_quantize_on_load_counts_the_copy_it_reads():
    cpu, gpu = (estimate("llama-3.1-8b", "int8", 4096, device=d) for d in ("cpu", "cuda"))
    bf16 = estimate("llama-3.1-8b", "bf16", 4096).breakdown["weights"]
    assert cpu.load_transient_bytes == bf16 and gpu.load_transient_bytes == 0
    # 8B int8 on a 24 GB CPU box: runs in ~10 GB but the load reads 16 GB of bf16 first
    assert cpu.total_bytes < 24e9 < cpu.peak_bytes == cpu.load_peak_bytes
    assert not cpu.fits(24 * 10**9) and gpu.fits(24 * 10**9)
    assert "quantizes while loading" in " ".join(cpu.notes) and "load peak" in str(cpu)
    assert (
        estimate("llama-3.1-8b", "gptq", 4096, device="cpu").load_transient_bytes == 0
    )  # pre-quantized


def test_kv_cache_dtype():
    c = card("llama-3.1-8b")
    assert kv_cache_bytes(c, 1000, 1, 1) * 2 == kv_cache_bytes(c, 1000, 1, 2)
    assert (
        estimate(c, "bf16", 8192, kv_dtype="fp8").breakdown["kv_cache"] * 2
        == estimate(c, "bf16", 8192).breakdown["kv_cache"]
    )
