"""Arbitrary values at the estimator's and the catalog's public boundaries: the answer is a result
or the kit's own error (with a fix), never a raw TypeError/ValueError from deeper down."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llamalab
from llamalab import LlamalabError
from llamalab.catalog import card, gpu, scheme
from llamalab.catalog.custom import custom_card
from llamalab.plan.choice import best_scheme
from llamalab.plan.estimator import Estimate, estimate, max_context, requirements_table
from llamalab.plan.sizing import Sizing, sizing
from llamalab.plan.speed import roofline

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.binary(max_size=5),
)
MODELS = st.one_of(st.sampled_from(["default", "llama-3.1-8b", "mixtral-8x7b", "phi-3-mini"]), JUNK)
SCHEMES = st.one_of(st.sampled_from(["bf16", "int8", "gptq", "q4_k_m", "gguf", "nf4"]), JUNK)
GPUS = st.one_of(
    st.sampled_from(["rtx-4090", "h100-80gb", "2x a100-80gb", "t4"]), st.integers(1, 10**12), JUNK
)
CONTEXTS = st.one_of(st.integers(1, 70_000), JUNK)
BATCHES = st.one_of(st.integers(1, 8), JUNK)
MODES = st.one_of(st.sampled_from(["inference", "lora", "qlora", "full"]), JUNK)
DEVICES = st.one_of(st.sampled_from(["cpu", "cuda", "cuda:1"]), JUNK)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def result_or_kit_error(fn, *args, **kwargs):
    """Call `fn`; a LlamalabError with a message and a fix is an acceptable answer (returns
    None)."""
    try:
        return fn(*args, **kwargs)
    except LlamalabError as e:
        assert e.message and e.fix, f"{type(e).__name__} without a message or a fix: {e!r}"
        return None


@FAST
@given(
    MODELS,
    SCHEMES,
    CONTEXTS,
    BATCHES,
    MODES,
    st.one_of(st.none(), st.sampled_from(["fp8", "q8_0"]), JUNK),
    DEVICES,
    st.one_of(st.none(), st.sampled_from([32, 128]), JUNK),
)
def test_estimate(model, s, context, batch, mode, kv_dtype, device, group_size):
    e = result_or_kit_error(
        estimate, model, s, context, batch, mode, kv_dtype, device=device, group_size=group_size
    )
    if e is not None:
        assert (
            isinstance(e, Estimate)
            and e.total_bytes > 0
            and all(v >= 0 for v in e.breakdown.values())
        )
        assert isinstance(context, int) and not isinstance(context, bool) and e.context == context


@FAST
@given(MODELS, SCHEMES, GPUS, BATCHES, MODES)
def test_max_context(model, s, g, batch, mode):
    n = result_or_kit_error(max_context, model, s, g, batch, mode=mode)
    if n is not None:
        assert isinstance(n, int) and 0 <= n <= card(model).context


@settings(max_examples=60, deadline=None)
@given(
    MODELS,
    GPUS,
    CONTEXTS,
    BATCHES,
    MODES,
    st.one_of(st.none(), st.lists(SCHEMES, max_size=3), JUNK),
)
def test_best_scheme(model, g, context, batch, mode, candidates):
    best = result_or_kit_error(best_scheme, model, g, context, batch, mode, candidates)
    assert best is None or scheme(best).name == best


@FAST
@given(MODELS, SCHEMES, st.one_of(st.sampled_from(["h100-80gb", "l4"]), JUNK), CONTEXTS, BATCHES)
def test_roofline(model, s, g, context, batch):
    r = result_or_kit_error(roofline, model, s, g, context, batch)
    if r is not None:
        assert math.isfinite(r["tokens_per_s_per_sequence"]) and r["tokens_per_s_per_sequence"] > 0


@settings(max_examples=40, deadline=None)
@given(
    st.one_of(st.lists(MODELS, max_size=2), MODELS),
    st.one_of(st.lists(SCHEMES, max_size=2), SCHEMES),
    CONTEXTS,
)
def test_requirements_table(models, schemes, context):
    df = result_or_kit_error(requirements_table, models, schemes, context)
    if df is not None:
        assert len(df) >= 1 and (df["total_gb"] > 0).all()


@settings(max_examples=60, deadline=None)
@given(
    MODELS,
    SCHEMES,
    CONTEXTS,
    st.one_of(st.sampled_from(["rtx-4090", "h200"]), st.integers(1, 10**12), JUNK),
    BATCHES,
    MODES,
    st.one_of(st.none(), DEVICES),
)
def test_sizing(model, s, context, g, batch, mode, device):
    if isinstance(g, str) and g.strip().lower() in ("this", "here", "local"):
        g = "h200"  # this machine's memory is not a property of the input
    p = result_or_kit_error(sizing, model, s, g, context, batch, mode, device or "auto")
    if p is not None:
        assert isinstance(p, Sizing) and p.fits == (p.devices_needed == 1) and p.max_context >= 0


@FAST
@given(JUNK)
def test_lookups(value):
    for lookup in (card, scheme, gpu, llamalab.card, llamalab.scheme, llamalab.gpu):
        result_or_kit_error(lookup, value)


@FAST
@given(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), JUNK),
    st.one_of(st.none(), MODELS),
    st.one_of(st.none(), CONTEXTS),
)
def test_custom_card(params_b, like, context):
    c = result_or_kit_error(custom_card, params_b, like, context)
    if c is not None:
        assert c.params > 0 and c.context >= 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, 0, True, "lots", None, [4096]])
def test_context_must_be_a_whole_positive_number(bad):
    with pytest.raises(llamalab.InvalidSetting, match="context"):
        estimate("llama-3.1-8b", "bf16", bad)
