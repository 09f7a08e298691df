"""One answer to "how many GPUs": the estimator's split, the calculator's sizing, deployment_plan
and the CLI agree for every catalog model × scheme × GPU, and the count is one vLLM can run:
a tensor-parallel size (1, 2, 4, 8) the heads divide by, times pipeline stages."""

import pytest

import llamalab
from llamalab import catalog, deployment_plan, estimate, sizing
from llamalab.plan.parallel import PlanDoesNotFit, valid_tp


def test_every_model_scheme_gpu_gets_one_count_tensor_parallelism_can_use():
    checked = refused = 0
    for m in catalog.model_names():
        ctx = min(4096, catalog.card(m).context)
        for s in catalog.scheme_names():
            for g in catalog.gpu_names():
                try:
                    plan = deployment_plan(m, s, g, context=ctx)
                except (PlanDoesNotFit, llamalab.SchemeUnavailable):
                    refused += 1
                    continue
                e = estimate(m, s, ctx, device="cuda", engine=plan.engine)
                assert e.devices_needed(g) == plan.gpus, (m, s, g)
                assert valid_tp(catalog.card(m), plan.tensor_parallel), (m, s, g)
                assert plan.tensor_parallel in (1, 2, 4, 8), (m, s, g)
                assert plan.gpus == plan.tensor_parallel * plan.pipeline_parallel
                checked += 1
    assert checked > 3500 and refused < checked / 5, (checked, refused)


@pytest.mark.parametrize(
    ("model", "scheme", "gpus"),
    [("llama-3.1-405b", "int8", 8), ("llama-3.1-70b", "int8", 1), ("llama-3.1-70b", "bf16", 2)],
)
def test_the_issues_examples_on_h100s(model, scheme, gpus):
    """6 H100s is no tensor-parallel size vLLM can run for 405B int8: it takes 8. The estimate, the
    calculator and the cost model agree (deployment_plan refuses int8: vLLM has no int8 path)."""
    e = estimate(model, scheme, 4096, device="cuda", engine="vllm")
    p = sizing(model, scheme, "h100-80gb", context=4096, engine="vllm")
    cost = llamalab.cost_at_scale(model, scheme, "h100-80gb", context=4096, batch=1)
    assert e.devices_needed("h100-80gb") == p.devices_needed == cost.gpus_per_replica == gpus
    if scheme == "bf16":
        assert deployment_plan(model, scheme, "h100-80gb", context=4096).gpus == gpus


def test_sizing_follows_the_engine_the_estimate_is_for():
    """vLLM keeps 5-10 % of each GPU; transformers may use all of it: the same peak can fit one and
    not the other, and `fits` always agrees with one device."""
    for engine in ("transformers", "vllm", "llama.cpp"):
        p = sizing("llama-3.1-8b", "bf16", "rtx-4090", context=32768, engine=engine)
        assert p.fits == (p.devices_needed == 1) and p.estimate.engine == engine


def test_a_served_8b_at_128k_needs_two_l4s_not_four():
    """Chunked prefill: vLLM never holds a 128k-token prompt's activations at once."""
    one_pass = estimate("llama-3.1-8b", "bf16", 131072, device="cuda")
    chunked = estimate("llama-3.1-8b", "bf16", 131072, device="cuda", engine="vllm")
    assert one_pass.breakdown["activations"] > 10 * chunked.breakdown["activations"]
    assert deployment_plan("llama-3.1-8b", "bf16", "l4", context=131072).gpus == 2
    assert any("max_num_batched_tokens" in n for n in chunked.notes)


def test_plans_say_how_many_sequences_the_kv_cache_holds():
    """vLLM's "Maximum concurrency": KV room left ÷ KV bytes of one sequence."""
    p = deployment_plan("llama-3.1-8b", "bf16", "h100-80gb", context=8192)
    per_token = 2 * 32 * 8 * 128 * 2  # layers × KV heads × head size × K and V × bf16
    assert p.max_concurrency == pytest.approx(p.kv_cache_bytes / per_token / 8192)
    assert p.max_concurrency_4k == pytest.approx(2 * p.max_concurrency)
    # 85.5 GB × 0.90 less 16 GB weights, ~2.5 GB overheads and activations: about 58 GB of KV
    assert 50e9 < p.kv_cache_bytes < 65e9 and 50 < p.max_concurrency < 60
    assert any("Maximum concurrency" in r for r in p.reasons)


def test_training_estimates_run_in_transformers_only():
    with pytest.raises(llamalab.InvalidSetting, match="training runs in transformers"):
        estimate("llama-3.1-8b", "bf16", mode="lora", engine="vllm")
    assert estimate("llama-3.1-8b", "q4_k_m").engine == "llama.cpp"
    assert estimate("llama-3.1-8b", "int8").engine == "transformers"
