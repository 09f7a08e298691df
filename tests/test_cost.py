"""cost_at_scale: API vs self-hosted monthly cost,
from editable prices with their date and source."""

import math

import pytest

import llamalab
from llamalab.catalog.prices import PRICES, prices
from llamalab.plan.cost import CostAssumptions, cost_at_scale


def test_every_price_names_its_date_and_source():
    apis, hours = prices()
    assert apis and hours
    for p in [*apis.values(), *hours.values()]:
        assert p.date[:4].isdigit() and p.source.startswith("https://"), p
    for name in hours:
        llamalab.gpu(name)  # every GPU-hour price is for a catalog GPU


def test_curves_follow_the_arithmetic():
    r = cost_at_scale(
        "llama-3.1-70b", "int8", "h100-80gb", "gpt-4o", tokens_per_month=[1e6, 1e9, 1e11]
    )
    price = (0.75 * r.api_input_usd_per_mtok + 0.25 * r.api_output_usd_per_mtok) / 1e6
    assert r.api_usd == pytest.approx(tuple(v * price for v in r.tokens_per_month))
    assert r.gpus_per_replica == llamalab.estimate(
        "llama-3.1-70b", "int8", 4096, 8, device="cuda"
    ).devices_needed("h100-80gb")
    month = r.gpus_per_replica * r.gpu_usd_per_hour * r.hours_per_month
    assert r.self_hosted_usd[0] == pytest.approx(month)  # one replica, paid whether busy or not
    assert r.replicas[-1] == math.ceil(1e11 / r.replica_tokens_per_month)
    assert r.self_hosted_usd[-1] == pytest.approx(r.replicas[-1] * month)


def test_break_even_is_where_the_curves_cross():
    r = cost_at_scale("llama-3.1-70b", "int8", "h100-80gb", "gpt-4o")
    be = r.break_even_tokens_per_month
    assert be is not None
    below = cost_at_scale(
        "llama-3.1-70b", "int8", "h100-80gb", "gpt-4o", tokens_per_month=[be * 0.99, be * 1.01]
    )
    assert (
        below.api_usd[0] < below.self_hosted_usd[0] and below.api_usd[1] > below.self_hosted_usd[1]
    )
    assert "cheaper above" in str(r)


def test_a_cheap_api_can_never_be_beaten():
    r = cost_at_scale(
        "llama-3.1-70b",
        "int8",
        "h100-80gb",
        api="x",
        api_input_usd_per_mtok=0.0001,
        api_output_usd_per_mtok=0.0001,
    )
    assert r.break_even_tokens_per_month is None
    assert all(a < h for a, h in zip(r.api_usd, r.self_hosted_usd))
    assert "never" in str(r)


def test_every_input_is_editable_and_moves_the_answer():
    base = cost_at_scale()
    assert cost_at_scale(
        gpu_usd_per_hour=base.gpu_usd_per_hour / 2
    ).break_even_tokens_per_month == pytest.approx(base.break_even_tokens_per_month / 2)
    assert cost_at_scale(utilization=0.25).replica_tokens_per_month == pytest.approx(
        base.replica_tokens_per_month / 2
    )
    fast = cost_at_scale(decode_tokens_per_s=base.decode_tokens_per_s * 3)
    assert fast.replica_tokens_per_month > base.replica_tokens_per_month
    given = cost_at_scale(api_input_usd_per_mtok=1.0)
    assert given.api_input_usd_per_mtok == 1.0 and "given by the caller" in given.sources["api"]


def test_prices_come_from_a_file_the_learner_can_edit(tmp_path):
    f = tmp_path / "prices.toml"
    f.write_text(PRICES.read_text().replace("usd_per_hour = 2.99", "usd_per_hour = 5.98"))
    assert cost_at_scale(prices_file=f).gpu_usd_per_hour == 5.98


@pytest.mark.parametrize(
    "kw",
    [
        dict(api="no-such-api"),
        dict(gpu="h100-80gb", utilization=0),
        dict(input_share=1.5),
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


def test_widget_recomputes_from_its_inputs():
    from llamalab.widgets import CostCalculator

    w = CostCalculator()
    first = w.result
    w.gpu_price.value = first.gpu_usd_per_hour / 2
    assert w.result.break_even_tokens_per_month == pytest.approx(
        first.break_even_tokens_per_month / 2
    )
    assert len(w.figure.data) >= 2 and w.errors.message == ""
    w.utilization.value = 0.0
    assert w.errors.message  # a bad input shows inline, no traceback
