"""best_scheme weighs speed: the highest-fidelity scheme that fits and decodes at the target
speed by the speed law on the machine asked about (its measured bandwidth on this CPU)."""

from dataclasses import replace

import pytest

import llamalab
from llamalab import choose_scheme, hardware, memory_bandwidth


@pytest.fixture(scope="module")
def roomy():
    """This machine as it is, with 24 GiB free: the choice then depends on speed, not on what else
    happens to be running."""
    return replace(hardware(), ram_available_bytes=24 * 2**30, gpus=(), cuda_free_bytes=())


def test_8b_on_this_cpu_is_a_scheme_that_reads_at_the_target_speed(roomy):
    c = choose_scheme("llama-3.1-8b", roomy)
    rows = {r["scheme"]: r for r in c.rows}
    fast = [r for r in c.rows if r["fits"] and r["tokens_per_s"] >= c.target_tokens_per_s]
    assert rows["bf16"]["fits"] and c.scheme != "bf16"  # bf16 fits in 24 GiB, but ~1 tok/s
    if fast:  # the highest-fidelity scheme at the target speed
        assert c.scheme == fast[0]["scheme"] and "at least the target" in c.why
    else:  # a busy machine: the fastest that fits, said so
        assert rows[c.scheme]["tokens_per_s"] == max(r["tokens_per_s"] for r in c.rows if r["fits"])
        assert "none reaches" in c.why
    assert "bf16 fits but ~" in c.why and "measured" in c.why
    assert llamalab.best_scheme("llama-3.1-8b", roomy) == c.scheme or "none reaches" in c.why


def test_target_zero_is_fidelity_alone_and_budgets_without_bandwidth_ignore_speed(roomy):
    assert choose_scheme("llama-3.1-8b", roomy, target_tokens_per_s=0).scheme == "bf16"
    bare = choose_scheme("llama-3.1-8b", 24 * 2**30)  # bytes: no bandwidth known
    assert bare.scheme == "bf16" and bare.target_tokens_per_s is None
    lora = choose_scheme("llama-3.1-8b", roomy, mode="lora")  # training: speed not weighed
    assert lora.target_tokens_per_s is None


def test_on_a_gpu_the_datasheet_bandwidth_decides():
    c = choose_scheme("llama-3.1-70b", "h100-80gb")
    assert c.scheme in ("fp8", "int8", "gptq-8bit", "q8_0") and "h100-80gb datasheet" in c.why
    slow = choose_scheme("llama-3.1-70b", "h100-80gb", target_tokens_per_s=60)
    assert slow.scheme != c.scheme  # int8 reads 70 GB per token: ~45 tok/s at 3.35 TB/s


def test_memory_bandwidth_is_measured_here():
    bw = memory_bandwidth(buffer_mb=32, runs=2)
    assert len(bw.runs) == 2 and bw.bytes_per_s == max(bw.runs) > 1e8
    assert bw.buffer_bytes == 32 * 2**20 and "GB/s" in str(bw)


def test_only_schemes_the_machine_runs_are_chosen():
    """FP8 needs a GPU with FP8 kernels (vLLM: compute capability ≥ 8.0): never on a CPU or a T4."""
    assert choose_scheme("llama-3.1-405b", "8x h100-80gb").scheme == "fp8"
    assert "fp8" not in {r["scheme"] for r in choose_scheme("llama-3.1-8b", "t4").rows}
    assert "fp8" not in {r["scheme"] for r in choose_scheme("default", "this").rows}
