"""The sweep, compare() and the Arena against the fake engines (tests/fakes.py): real LoadedModel
timing, streaming and stop logic, no model weights (fast). The loader is injected,
so no backend registry is involved."""

from __future__ import annotations

import threading

import pytest
from fakes import ENDLESS, FakeEngine, FakeScoringEngine, Loader

from llamalab import InvalidSetting, compare, summarize, sweep
from llamalab.measure.sweep import (
    COLUMNS,
    Done,
    Failed,
    Loaded,
    Loading,
    Quality,
    Row,
    Token,
    collect,
)

OLD_NAMES = (
    "decode_tok_s",
    "peak_rss_bytes",
    "load_rss_delta_bytes",
    "footprint_bytes",
    "load_seconds",
    "tokens",
    "ppl_context",
)


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def test_events_come_in_order_and_every_scheme_is_unloaded():
    load = Loader()
    events = list(
        sweep("default", ["bf16", "fp16"], ["Hi", "Name a colour."], max_new_tokens=3, load=load)
    )
    order = [
        k for i, k in enumerate(kinds(events)) if k != "Token" or kinds(events)[i - 1] != "Token"
    ]
    assert order == ["Loading", "Loaded", "Token", "Row", "Token", "Row"] * 2 + ["Done"]
    assert events[-1] == Done(stopped=False) and all(m.engine.unloaded for m in load.loaded)
    rows = [e.record for e in events if isinstance(e, Row)]
    assert [(r["scheme"], r["prompt"]) for r in rows] == [
        ("bf16", "Hi"),
        ("bf16", "Name a colour."),
        ("fp16", "Hi"),
        ("fp16", "Name a colour."),
    ]
    streamed = "".join(
        e.text
        for e in events
        if isinstance(e, Token) and e.scheme == "bf16" and e.prompt_index == 0
    )
    assert streamed == rows[0]["text"] == "Paris is the"
    r = rows[0]
    assert r["new_tokens"] == 3 and r["engine"] == "fake" and r["weights_memory_bytes"] == 1_000_000
    assert (
        r["load_s"] == 0.01
        and r["load_memory_delta_bytes"] == 2_000_000
        and r["finish_reason"] == "length"
    )
    assert r["decode_tokens_per_s"] > 0 and r["ttft_s"] > 0 and r["peak_memory_kind"]
    assert not set(OLD_NAMES) & set(r)
    loaded = next(e for e in events if isinstance(e, Loaded))
    assert loaded.facts["engine"] == "fake" and loaded.facts["quantized_at"] == "none"


def test_stop_mid_sweep_ends_the_generation_and_skips_the_rest():
    stop = threading.Event()
    load = Loader({"bf16": FakeEngine(hook=lambda n: n == 10 and stop.set())})
    events = list(
        sweep(
            "default",
            ["bf16", "fp16"],
            ["Tell a long story.", "Another."],
            max_new_tokens=2000,
            warmup=0,
            stop_event=stop,
            load=load,
        )
    )
    rows = [e.record for e in events if isinstance(e, Row)]
    assert len(rows) == 1 and rows[0]["finish_reason"] == "stopped" and rows[0]["new_tokens"] == 10
    assert [e.scheme for e in events if isinstance(e, Loading)] == ["bf16"]
    assert events[-1] == Done(stopped=True) and load.loaded[0].engine.unloaded


def test_a_failing_scheme_becomes_an_event_and_the_others_go_on():
    load = Loader({"fp16": FakeEngine(fail=True)}, fail={"int8"})
    events = list(sweep("default", ["int8", "fp16", "bf16"], ["Hi"], max_new_tokens=2, load=load))
    failed = [e for e in events if isinstance(e, Failed)]
    assert [f.scheme for f in failed] == ["int8", "fp16"]
    assert "cannot run on cpu" in failed[0].message and "bf16" in failed[0].fix
    assert failed[1].message == "Unexpected RuntimeError: the engine broke"
    assert [e.record["scheme"] for e in events if isinstance(e, Row)] == ["bf16"]
    assert all(m.engine.unloaded for m in load.loaded) and events[-1] == Done(stopped=False)


def test_an_engine_without_logits_gets_a_quality_reason_not_a_crash():
    events = list(
        sweep(
            "default",
            ["bf16", "int8"],
            ["Hi"],
            max_new_tokens=2,
            quality=True,
            reference="bf16",
            load=Loader(),
        )
    )
    assert kinds(events).count("Scoring") == 2 and not any(isinstance(e, Failed) for e in events)
    for q in (e for e in events if isinstance(e, Quality)):
        assert q.scores["perplexity"] is None and q.scores["kl_vs_reference"] is None
        assert q.scores["quality_error"]
    rows = collect(events)
    assert len(rows) == 2 and all(r["quality_error"] and r["new_tokens"] == 2 for r in rows)


@pytest.mark.parametrize("order", [["bf16", "int8"], ["int8", "bf16"]])
def test_quality_against_a_listed_scheme_is_computed_from_its_own_pass(order):
    """The reference among the schemes is measured first (wherever it is listed) and its own
    pass is the reference: no load or scoring of its own."""
    load = Loader({"bf16": FakeScoringEngine(), "int8": FakeScoringEngine(shift=3)})
    events = list(
        sweep(
            "default",
            order,
            ["Hi"],
            max_new_tokens=2,
            quality=True,
            reference="bf16",
            quality_tokens=200,
            quality_window=64,
            load=load,
        )
    )
    assert [e.scheme for e in events if isinstance(e, Loading)] == ["bf16", "int8"]
    assert kinds(events).count("Scoring") == 2
    bf16, int8 = (e.scores for e in events if isinstance(e, Quality))
    assert (
        bf16["kl_vs_reference"] == 0 and bf16["top1_vs_reference"] == 1 and bf16["perplexity"] > 1
    )
    assert (
        int8["kl_vs_reference"] > 0
        and 0 < int8["top1_vs_reference"] < 1
        and int8["reference"] == "bf16"
    )
    assert (
        int8["ppl_window"] == 64
        and int8["ppl_tokens"] == bf16["ppl_tokens"]
        and not int8.get("quality_error")
    )


def test_a_reference_outside_the_first_scheme_is_loaded_once_and_may_fail_alone():
    engines = {
        "bf16": FakeScoringEngine(),
        "int8": FakeScoringEngine(shift=3),
        "fp16": FakeScoringEngine(),
    }
    events = list(
        sweep(
            "default",
            ["int8", "fp16"],
            ["Hi"],
            max_new_tokens=2,
            quality=True,
            reference="bf16",
            quality_tokens=200,
            quality_window=64,
            load=Loader(engines),
        )
    )
    assert [e.scheme for e in events if isinstance(e, Loading)] == ["bf16", "int8", "fp16"]
    int8, fp16 = (e.scores for e in events if isinstance(e, Quality))
    assert int8["kl_vs_reference"] > 0 and fp16["kl_vs_reference"] == pytest.approx(0, abs=1e-6)
    engines = {"int8": FakeScoringEngine(shift=3)}
    events = list(
        sweep(
            "default",
            ["int8"],
            ["Hi"],
            max_new_tokens=2,
            quality=True,
            reference="bf16",
            quality_tokens=200,
            quality_window=64,
            load=Loader(engines, fail={"bf16"}),
        )
    )
    failed = next(e for e in events if isinstance(e, Failed))
    assert failed.scheme == "bf16 (reference)" and "cannot run" in failed.message
    scores = next(e for e in events if isinstance(e, Quality)).scores
    assert scores["perplexity"] > 1 and "kl_vs_reference" not in scores  # perplexity alone


def test_summarize_takes_medians_per_model_and_scheme_and_keeps_errors():
    recs = [
        {"model": "m", "scheme": "bf16", "ttft_s": 0.1, "decode_tokens_per_s": 40, "new_tokens": 8},
        {"model": "m", "scheme": "bf16", "ttft_s": 0.3, "decode_tokens_per_s": 20, "new_tokens": 8},
        {"model": "m", "scheme": "bf16", "ttft_s": 0.2, "decode_tokens_per_s": 30, "new_tokens": 8},
        {"model": "m", "scheme": "nf4", "error": "cannot run"},
        {
            "model": "m",
            "scheme": "int8",
            "ttft_s": 0.5,
            "decode_tokens_per_s": None,
            "new_tokens": 4,
        },
    ]
    s = summarize(recs)
    assert list(s.scheme) == ["bf16", "nf4", "int8"] and list(s.runs) == [3, 0, 1]
    assert s.ttft_s[0] == pytest.approx(0.2) and s.decode_tokens_per_s[0] == 30
    assert s.error[1] == "cannot run" and s.error.isna()[0]


def test_compare_is_a_dataframe_over_the_sweep():
    df = compare(
        "default",
        schemes=["bf16", "nf4"],
        prompts=["Hi", "Bye"],
        max_new_tokens=4,
        quality=False,
        load=Loader(fail={"nf4"}),
    )
    assert list(df.columns) == list(COLUMNS) and not set(OLD_NAMES) & set(df.columns)
    ok = df[df.error.isna()]
    assert len(ok) == 2 and (ok.new_tokens == 4).all() and (ok.engine == "fake").all()
    assert "cannot run on cpu" in df[df.scheme == "nf4"].error.iloc[0]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(schemes=[]), "schemes"),
        (dict(schemes=[3]), "schemes[0]"),
        (dict(schemes=None), "schemes"),
        (dict(prompts="Hi"), "prompts"),
        (dict(prompts=[]), "prompts"),
        (dict(prompts=[""]), "prompts[0]"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(repeats=0), "repeats"),
        (dict(quality_tokens="1024"), "quality_tokens"),
        (dict(quality_window=1.5), "quality_window"),
        (dict(quality="yes"), "quality"),
        (dict(warmup=-1), "warmup"),
        (dict(tokens=5), "tokens"),
    ],
)
def test_bad_arguments_raise_the_kits_error_naming_them(kwargs, name):
    args = {"schemes": ["bf16"], "prompts": ["Hi"], "load": Loader(), **kwargs}
    with pytest.raises(InvalidSetting) as err:
        sweep("default", args.pop("schemes"), args.pop("prompts"), **args)
    assert name in err.value.message
    with pytest.raises(InvalidSetting):
        compare("default", **{"schemes": ["bf16"], "prompts": ["Hi"], "load": Loader(), **kwargs})


# ---------------------------------------------------------------- the Arena subscribes to the sweep


@pytest.fixture
def arena_module():
    return pytest.importorskip("llamalab.widgets.arena")


def test_arena_renders_rows_figure_table_and_failures_inline(arena_module):
    a = arena_module.Arena(
        schemes=("bf16", "int8", "fp16"),
        max_new_tokens=5,
        prompt="Name a colour.\nName a fruit.",
        load=Loader(fail={"int8"}),
    )
    a.run_button.click()
    assert a.wait(30) and a.errors.message == "", a.errors.message
    assert [(r["scheme"], r.get("prompt")) for r in a.records] == [
        ("bf16", "Name a colour."),
        ("bf16", "Name a fruit."),
        ("int8", None),
        ("fp16", "Name a colour."),
        ("fp16", "Name a fruit."),
    ]
    assert (
        "Paris is the capital of" in a.cells["bf16"][1].value and " of" in a.cells["fp16"][1].value
    )
    assert (
        "cannot run on cpu" in a.cells["int8"][2].value
        and "Traceback" not in a.cells["int8"][2].value
    )
    assert list(a.figure.data[0].x) == ["bf16", "fp16"] and a.figure._widget_data == a.figure._data
    assert (
        a.table.value.count("<tr>") == 4
        and "cannot run" in a.table.value
        and "decode tokens/s" in a.table.value
    )
    assert "done: 2 scheme(s)" in a.status.value and a.progress.value == a.progress.max
    assert not a.run_button.disabled and a.stop_button.disabled
    s = a.summary
    assert s.new_tokens[0] == 5 and s.weights_memory_bytes[0] == 1_000_000 and s.error[1]


def test_arena_quality_reason_for_an_engine_without_logits(arena_module):
    a = arena_module.Arena(schemes=("bf16", "fp16"), max_new_tokens=2, quality=True, load=Loader())
    a.run(wait=True)
    s = a.summary
    assert a.errors.message == "" and s.quality_error.all() and s.perplexity.isna().all()


def test_arena_stop_ends_the_generation_and_skips_the_remaining_schemes(arena_module):
    """Stop is pressed (the button's handler runs)
    when the 20th token of the first scheme comes out."""
    a = arena_module.Arena(
        schemes=("bf16", "fp16"),
        max_new_tokens=512,
        warmup=0,
        load=Loader(
            {"bf16": FakeEngine(ENDLESS, hook=lambda n: n == 20 and a.stop_button.click())}
        ),
    )
    a.run()
    assert a.wait(30) and "stopped" in a.status.value
    assert [r["scheme"] for r in a.records] == ["bf16"] and a.records[0][
        "finish_reason"
    ] == "stopped"
    assert a.records[0]["new_tokens"] == 20
