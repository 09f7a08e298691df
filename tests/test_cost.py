"""cost_at_scale: self-hosted vs a closed API vs the same open model hosted, monthly, from editable
prices with their date and source; replicas that step up, prefill from compute, and the ranges
where each option is cheapest."""

import itertools
import math

import pytest

import llamalab
from llamalab import catalog
from llamalab.catalog.prices import PRICES, prices
from llamalab.plan.commands import engine_for
from llamalab.plan.cost import (
    API,
    HOSTED,
    SELF,
    CostAssumptions,
    cost_at_scale,
    replicas_for,
    single_crossing,
    winning_ranges,
)
from llamalab.plan.parallel import PlanDoesNotFit, valid_tp


def test_every_price_names_its_date_and_source():
    apis, hours = prices()
    assert apis and hours
    for p in [*apis.values(), *hours.values()]:
        assert p.date[:4].isdigit() and p.source.startswith("https://"), p
    for name in hours:
        llamalab.gpu(name)  # every GPU-hour price is for a catalog GPU
    served = {a.model for a in apis.values() if a.model}
    assert "llama-3.1-70b" in served
    for m in served:
        assert catalog.card(m).name == m  # a hosted entry names a catalog model, as data


def test_curves_follow_the_arithmetic():
    r = cost_at_scale(
        "llama-3.1-70b", "int8", "h100-80gb", "gpt-4o", tokens_per_month=[1e6, 1e9, 1e11]
    )
    price = (0.75 * r.api_input_usd_per_mtok + 0.25 * r.api_output_usd_per_mtok) / 1e6
    assert r.api_usd == pytest.approx(tuple(v * price for v in r.tokens_per_month))
    assert r.hosted_usd == pytest.approx(
        tuple(v * r.hosted_usd_per_token for v in r.tokens_per_month)
    )
    assert r.gpus_per_replica == llamalab.estimate(
        "llama-3.1-70b", "int8", 4096, 8, device="cuda", engine="vllm"
    ).devices_needed("h100-80gb")
    month = r.gpus_per_replica * r.gpu_usd_per_hour * r.hours_per_month
    assert r.self_hosted_usd[0] == pytest.approx(month)  # one replica, paid whether busy or not
    assert r.replicas[-1] == math.ceil(1e11 / r.replica_tokens_per_month)
    assert r.self_hosted_usd[-1] == pytest.approx(r.replicas[-1] * month)


def test_replicas_step_up_one_whole_replica_at_each_capacity():
    r = cost_at_scale()
    cap, month = r.replica_tokens_per_month, r.replica_usd_per_month
    for n in (1, 2, 3, 10):
        assert r.cost(SELF, n * cap * 0.999) == pytest.approx(n * month)
        assert r.cost(SELF, n * cap) == pytest.approx(n * month)  # full, not yet the next
        assert r.cost(SELF, n * cap * 1.001) == pytest.approx((n + 1) * month)
    assert replicas_for(0, cap) == 1  # a replica is paid even when idle


def test_the_issues_example_the_api_is_cheaper_again_at_1_8_billion():
    """With the defaults one replica beats GPT-4o near 1 B tokens a month, but at 1.8 B the
    second replica is paid in full and still half idle: the API is cheaper again. No single
    break-even exists; the ranges say where each wins."""
    r = cost_at_scale(
        "llama-3.1-70b", "int8", "h100-80gb", "gpt-4o", tokens_per_month=[1.2e9, 1.8e9]
    )
    assert r.replicas == (1, 2)
    assert r.self_hosted_usd[0] < r.api_usd[0] and r.api_usd[1] < r.self_hosted_usd[1]
    assert r.break_even_tokens_per_month is None
    pair = r.ranges_versus(API)
    assert [x.option for x in pair[:4]] == [API, SELF, API, SELF] and pair[-1].option == SELF
    assert pair[0].end == pytest.approx(r.replica_break_even_tokens_per_month)
    assert "no single break-even" in str(r)


def test_break_even_is_given_only_where_it_holds_for_every_volume_above():
    r = cost_at_scale(utilization=0.9)  # a busier replica: the second one pays for itself at once
    be = r.break_even_tokens_per_month
    assert be == pytest.approx(r.replica_break_even_tokens_per_month)
    assert r.cost(API, be * 0.99) < r.cost(SELF, be * 0.99)
    volumes = [be * 1.0001 * 1.01**k for k in range(1500)]  # up to ~3 million × be
    assert all(r.cost(SELF, v) < r.cost(API, v) for v in volumes)
    assert "cheaper above" in str(r)


def test_a_cheap_api_can_never_be_beaten():
    r = cost_at_scale(
        "llama-3.1-70b",
        "int8",
        "h100-80gb",
        api="x",
        api_input_usd_per_mtok=0.0001,
        api_output_usd_per_mtok=0.0001,
        hosted=None,
    )
    assert r.break_even_tokens_per_month is None
    assert r.ranges == ((0.0, math.inf, API),)
    assert all(a < h for a, h in zip(r.api_usd, r.self_hosted_usd))
    assert "never" in str(r)


SCENARIOS = [
    {},
    dict(hosted=None),
    dict(utilization=0.9),
    dict(utilization=0.6, batch=32),
    dict(gpu_usd_per_hour=0.0),
    dict(api_input_usd_per_mtok=0.0, api_output_usd_per_mtok=0.0),
    dict(hosted_input_usd_per_mtok=0.1, hosted_output_usd_per_mtok=0.1),
    dict(model="mistral-7b", scheme="bf16", gpu="l4"),
]


@pytest.mark.parametrize("kw", SCENARIOS)
def test_the_three_options_ranges_cover_the_volume_axis_with_no_gap(kw):
    r = cost_at_scale(**kw)
    rs = r.ranges
    assert rs[0].start == 0 and math.isinf(rs[-1].end)
    for a, b in itertools.pairwise(rs):
        assert a.end == b.start and a.start < a.end and a.option != b.option
    for rg in rs:  # each range's option is the cheapest inside it
        ends = (rg.start, rg.end if math.isfinite(rg.end) else max(rg.start * 10, 1e15))
        for t in (0.001, 0.5, 0.999):
            v = ends[0] + t * (ends[1] - ends[0])
            assert r.cheapest(v) == rg.option, (kw, rg, v)
    assert single_crossing(r.ranges_versus(API)) == r.break_even_tokens_per_month


def test_the_per_token_option_wins_ties_and_a_free_gpu_wins_everywhere():
    assert winning_ranges(1e9, 1000.0, {API: 1e-6}) == ((0.0, math.inf, API),)  # b == cap
    assert winning_ranges(1e9, 0.0, {API: 1e-6}) == ((0.0, math.inf, SELF),)
    rs = winning_ranges(1e9, 100.0, {API: 1e-6, HOSTED: 5e-7})
    assert rs[0] == (0.0, pytest.approx(2e8), HOSTED) and rs[-1].option == SELF


def test_prefill_comes_from_compute_not_batch():
    one = cost_at_scale("llama-3.1-8b", "bf16", "h100-80gb", batch=1, hosted=None)
    many = cost_at_scale("llama-3.1-8b", "bf16", "h100-80gb", batch=32, hosted=None)
    assert one.gpus_per_replica == many.gpus_per_replica == 1
    assert one.prefill_tokens_per_s == pytest.approx(many.prefill_tokens_per_s)  # batch: no gain
    assert many.decode_tokens_per_s > 10 * one.decode_tokens_per_s  # decode shares the weights
    c, h100 = catalog.card("llama-3.1-8b"), llamalab.gpu("h100-80gb")
    expected = 0.4 * h100.bf16_tflops * 1e12 / (2 * c.active_params)
    assert one.prefill_tokens_per_s == pytest.approx(expected)
    a100 = cost_at_scale("llama-3.1-8b", "bf16", "a100-80gb", batch=1, hosted=None)
    assert one.prefill_tokens_per_s / a100.prefill_tokens_per_s == pytest.approx(
        h100.bf16_tflops / llamalab.gpu("a100-80gb").bf16_tflops
    )
    two = cost_at_scale("llama-3.1-70b", "bf16", "h100-80gb", batch=1, hosted=None)
    per_gpu = 0.4 * h100.bf16_tflops * 1e12 / (2 * catalog.card("llama-3.1-70b").active_params)
    assert two.prefill_tokens_per_s == pytest.approx(two.gpus_per_replica * per_gpu)
    assert cost_at_scale(prefill_efficiency=0.2).prefill_tokens_per_s == pytest.approx(
        cost_at_scale().prefill_tokens_per_s / 2
    )
    moe = cost_at_scale("mixtral-8x7b", "bf16", "h100-80gb", hosted=None)
    assert "12.9 B active" in moe.notes[2]  # an MoE pays for its active parameters only
    t4 = cost_at_scale("llama-3.1-8b", "int8", "t4", gpu_usd_per_hour=0.35, hosted=None)
    assert "FP16 TFLOPS" in t4.notes[2]  # no BF16 on a T4: its FP16 figure


def test_measured_speeds_override_the_arithmetic():
    r = cost_at_scale(decode_tokens_per_s=1000.0, prefill_tokens_per_s=20000.0)
    assert (r.decode_tokens_per_s, r.prefill_tokens_per_s) == (1000.0, 20000.0)
    seconds = 0.75 / 20000 + 0.25 / 1000
    assert r.replica_tokens_per_month == pytest.approx(0.5 * 730 * 3600 / seconds)


def test_the_hosted_option_is_the_same_open_model():
    r = cost_at_scale()
    assert r.hosted == "together-llama-3.1-70b" and "hosted" in r.sources
    assert r.options == (SELF, API, HOSTED)
    none = cost_at_scale("mistral-7b", "bf16", "l4")
    assert none.hosted is None and none.hosted_usd == () and none.options == (SELF, API)
    assert any("No provider in the price list serves mistral-7b" in n for n in none.notes)
    assert cost_at_scale(hosted=None).hosted is None
    other = cost_at_scale(hosted="together-llama-3.1-8b")
    assert any("serves llama-3.1-8b, not llama-3.1-70b" in n for n in other.notes)
    given = cost_at_scale(hosted_input_usd_per_mtok=0.5, hosted_output_usd_per_mtok=0.5)
    assert given.hosted_usd_per_token == pytest.approx(0.5e-6)
    assert "given by the caller" in given.sources["hosted"]
    mine = cost_at_scale(
        "mistral-7b", "bf16", "l4", hosted_input_usd_per_mtok=0.2, hosted_output_usd_per_mtok=0.2
    )
    assert mine.hosted == "hosted-mistral-7b"


def test_prices_are_labelled_with_their_date_and_source():
    note = cost_at_scale().notes[-1]
    assert note.startswith("Prices as of 2024-10")
    assert "https://openai.com/api/pricing/" in note and "https://www.together.ai/pricing" in note
    assert "pass your own" in note


def test_every_input_is_editable_and_moves_the_answer():
    base = cost_at_scale()
    assert cost_at_scale(
        gpu_usd_per_hour=base.gpu_usd_per_hour / 2
    ).replica_break_even_tokens_per_month == pytest.approx(
        base.replica_break_even_tokens_per_month / 2
    )
    assert cost_at_scale(utilization=0.25).replica_tokens_per_month == pytest.approx(
        base.replica_tokens_per_month / 2
    )
    fast = cost_at_scale(decode_tokens_per_s=base.decode_tokens_per_s * 3)
    assert fast.replica_tokens_per_month > base.replica_tokens_per_month
    given = cost_at_scale(api_input_usd_per_mtok=1.0)
    assert given.api_input_usd_per_mtok == 1.0 and "given by the caller" in given.sources["api"]
    assert cost_at_scale(batch=32).decode_tokens_per_s > base.decode_tokens_per_s


def test_prices_come_from_a_file_the_learner_can_edit(tmp_path):
    f = tmp_path / "prices.toml"
    f.write_text(PRICES.read_text().replace("usd_per_hour = 2.99", "usd_per_hour = 5.98"))
    assert cost_at_scale(prices_file=f).gpu_usd_per_hour == 5.98
    f.write_text(PRICES.read_text().replace("usd_per_hour = 2.99", "usd_per_hour = 8.97"))
    assert cost_at_scale(prices_file=f).gpu_usd_per_hour == 8.97  # an edit is read again


@pytest.mark.parametrize(
    "kw",
    [
        dict(api="no-such-api"),
        dict(hosted="no-such-provider"),
        dict(gpu="h100-80gb", utilization=0),
        dict(input_share=1.5),
        dict(prefill_efficiency=0),
        dict(gpu="rtx-a6000"),
        dict(tokens_per_month=[]),
        dict(tokens_per_month=[-1]),
        dict(decode_tokens_per_s=0),
        dict(gpu="no-such-gpu"),
    ],
)
def test_bad_input_says_what_to_do(kw):
    with pytest.raises(llamalab.LlamalabError) as e:
        cost_at_scale(**kw)
    assert e.value.fix


def test_cost_has_no_torch():
    import subprocess
    import sys

    code = "import sys, llamalab; llamalab.cost_at_scale(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_assumptions_are_one_settings_object():
    a = CostAssumptions(batch=16, utilization=0.8)
    assert (
        cost_at_scale(assumptions=a).utilization
        == 0.8
        == cost_at_scale(utilization=0.8).utilization
    )
    assert (
        cost_at_scale(assumptions=a, batch=4).to_dict()["notes"]
        != cost_at_scale(assumptions=a).to_dict()["notes"]
    )
    with pytest.raises(llamalab.InvalidSetting, match="utilisation"):
        cost_at_scale(
            utilisation=0.5
        )  # the old spelling is not a setting: the error names the known ones


def test_the_frame_names_the_cheapest_of_the_three():
    df = cost_at_scale(tokens_per_month=[1e6, 1e9, 1e12]).to_frame()
    assert list(df.columns) == [
        "tokens_per_month",
        "api_usd",
        "hosted_usd",
        "self_hosted_usd",
        "replicas",
        "cheaper",
    ]
    assert set(df.cheaper) <= {SELF, API, HOSTED}


def test_every_catalog_model_scheme_gpu_gets_the_estimators_gpu_count():
    """The cost calculator, the estimator (and so deployment_plan, tests/test_gpu_count.py) give
    one GPU count; it is a count vLLM runs: 1, 2, 4, 8 or whole nodes of 8 — or, where the
    attention heads rule out TP=8, pipeline stages of the largest tensor-parallel size left."""
    checked, refused, not_eight = 0, 0, []
    schemes, gpus = catalog.scheme_names(), catalog.gpu_names()
    for m in catalog.model_names():
        c = catalog.card(m)
        ctx = min(4096, c.context)
        for s in schemes:
            for g in gpus:
                try:
                    engine = engine_for(catalog.scheme(s))
                    e = llamalab.estimate(m, s, ctx, 8, device="cuda", engine=engine)
                    want = e.devices_needed(g)
                except (PlanDoesNotFit, llamalab.UnknownScheme, llamalab.SchemeUnavailable):
                    refused += 1
                    continue
                r = cost_at_scale(
                    m, s, gpu=g, context=ctx, batch=8, gpu_usd_per_hour=1.0, tokens_per_month=[1e9]
                )
                assert r.gpus_per_replica == want, (m, s, g)
                if not (want in (1, 2, 4, 8) or want % 8 == 0):
                    tp = e.split(g).tensor_parallel
                    assert not valid_tp(c, 8) and want % tp == 0, (m, s, g, want)
                    not_eight.append((m, s, g, want))
                checked += 1
    assert checked > 4000 and refused < checked / 10, (checked, refused)
    assert len(not_eight) < 10, not_eight


def test_widget_recomputes_from_its_inputs():
    from llamalab.widgets import CostCalculator

    w = CostCalculator()
    first = w.result
    assert first.hosted == w.hosted.value == "together-llama-3.1-70b"
    w.gpu_price.value = first.gpu_usd_per_hour / 2
    assert w.result.replica_break_even_tokens_per_month == pytest.approx(
        first.replica_break_even_tokens_per_month / 2
    )
    assert len(w.figure.data) == 3 and w.errors.message == ""
    assert "tokens/month from" in w.table.value and "Cheapest" in w.answer.value
    w.batch.value = 32
    assert w.result.batch == 32 and w.result.decode_tokens_per_s > first.decode_tokens_per_s
    w.utilization.value = 0.9
    assert w.result.utilization == 0.9
    w.hosted.value = "none"
    assert w.result.hosted is None and len(w.figure.data) == 2
    w.model.value = "mistral-7b"  # no provider entry: the choice says so
    assert w.hosted.value == "none" and w.result.hosted is None
    w.utilization.value = 0.0
    assert w.errors.message  # a bad input shows inline, no traceback


def test_the_sensitivity_plot_shows_three_options_and_the_replica_steps():
    from llamalab.plots.cost import cost_figure, cost_per_mtok_figure

    r = cost_at_scale()
    fig = cost_per_mtok_figure(r)
    assert [t.name for t in fig.data] == [r.label(o) for o in (SELF, API, HOSTED)]
    own = fig.data[0]
    cap = r.replica_tokens_per_month
    jumps = [(x0, y1 / y0) for x0, y0, y1 in zip(own.x, own.y, own.y[1:]) if y1 > y0]
    for n, (x, ratio) in enumerate(jumps[:5], 1):  # the n-th replica fills, the next one starts
        assert x == pytest.approx(n * cap) and ratio == pytest.approx((n + 1) / n, rel=1e-4)
    assert len(jumps) >= 100  # a step at every replica in view (up to 1 T tokens a month)
    assert len(fig.layout.shapes) == len(r.ranges)  # shaded where each option is cheapest
    assert len(cost_figure(r).data) == 3
