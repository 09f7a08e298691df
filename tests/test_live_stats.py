"""LiveStats: a generation's figures while it streams, from the same token times and memory probe as
its Generation; and the Arena's live speed line per scheme. Fake engines (tests/fakes.py), no
model. Fast."""

from __future__ import annotations

import threading

import pytest
from fakes import ENDLESS, FakeEngine, Loader

from llamalab import InvalidSetting, LiveStats
from llamalab.core import memory

WAIT = 10


def test_stream_fills_live_stats_with_the_generations_own_figures(fake):
    live = LiveStats()
    assert not live.started and live.ttft_s is None and live.elapsed_s == 0.0
    seen = []
    m = fake(script=ENDLESS, hook=lambda n: n == 5 and seen.append(_read(live)))
    for item in m.stream("Hi", max_new_tokens=8, min_new_tokens=8, live=live):
        if not isinstance(item, str):
            g = item
    (at5,) = seen  # read on the engine's thread after its 5th token: nothing else moved
    t = g.token_times
    assert at5["new_tokens"] == 5 and not at5["done"]
    assert at5["ttft_s"] == g.ttft_s and at5["prefill_tokens_per_s"] == g.prefill_tokens_per_s
    assert at5["decode_tokens_per_s"] == pytest.approx(4 / (t[4] - t[0]), rel=1e-9)
    assert at5["prompt_tokens"] == g.prompt_tokens and at5["peak_memory_kind"] == memory.RSS_PEAK
    assert live.done and live.generation is g
    assert (live.new_tokens, live.decode_tokens_per_s, live.elapsed_s) == (
        8,
        g.decode_tokens_per_s,
        g.total_s,
    )
    assert live.peak_memory_bytes == g.peak_memory_bytes > 0
    assert g.to_dict()["prefill_tokens_per_s"] == g.prompt_tokens / g.prefill_s


def test_a_live_stats_object_starts_afresh_for_each_call(fake):
    live, m = LiveStats(), fake()
    first = m.generate("Hi", max_new_tokens=3, live=live)
    assert live.generation is first
    second = m.generate("Hello there", max_new_tokens=2, on_text=lambda _: None, live=live)
    assert live.generation is second and live.new_tokens == second.new_tokens


def test_a_remote_engine_has_no_prompt_size_or_memory_until_the_server_says(fake):
    live, m = LiveStats(), fake("fake-remote")
    during = []
    g = m.generate("Hi", on_text=lambda _: during.append(_read(live)), live=live)
    assert [d["new_tokens"] for d in during] == [1, 2, 3, 4, 5]
    assert all(d["prompt_tokens"] is None and d["prefill_tokens_per_s"] is None for d in during)
    assert all(d["peak_memory_bytes"] is None for d in during)
    assert {d["peak_memory_kind"] for d in during} == {memory.REMOTE}
    assert live.prefill_tokens_per_s == g.prompt_tokens / g.prefill_s


def test_live_must_be_a_live_stats(fake):
    with pytest.raises(InvalidSetting, match="LiveStats"):
        fake().generate("Hi", live={})


def _read(live: LiveStats) -> dict:
    keys = (
        "done",
        "new_tokens",
        "prompt_tokens",
        "ttft_s",
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "peak_memory_bytes",
        "peak_memory_kind",
    )
    return {k: getattr(live, k) for k in keys}


# ---------------------------------------------------------------- the Arena


def test_the_arena_shows_each_schemes_speed_live_then_its_rows_figures(monkeypatch):
    arena = pytest.importorskip("llamalab.widgets.arena")
    from llamalab.widgets import _common

    monkeypatch.setattr(arena, "SPEED_INTERVAL", 0)  # every piece: one line to check
    lines, shown = [], threading.Semaphore(0)

    def recorded(stats, extra=""):  # the real function; records what it was asked to show
        line = _common.speed_line(stats, extra)
        lines.append((stats.done, stats.new_tokens, line))
        if not stats.done:
            shown.release()
        return line

    monkeypatch.setattr(arena, "speed_line", recorded)
    lock = lambda n: shown.acquire(timeout=WAIT)  # the engine waits for each line
    a = arena.Arena(
        schemes=("bf16", "fp16"),
        max_new_tokens=6,
        warmup=0,
        load=Loader(
            {"bf16": FakeEngine(ENDLESS, hook=lock), "fp16": FakeEngine(ENDLESS, hook=lock)}
        ),
    )
    a.run(wait=True)
    assert a.errors.message == "" and [r["new_tokens"] for r in a.records] == [6, 6]
    live = [(n, line) for done, n, line in lines if not done]
    assert [n for n, _ in live] == [1, 2, 3, 4, 5, 6] * 2
    for record, cell in zip(a.records, ("bf16", "fp16")):
        ttft = f"TTFT <b>{record['ttft_s'] * 1e3:.0f} ms</b>"
        final = a.cells[cell][3].value
        assert ttft in final and "(live)" not in final
        assert f"decode <b>{record['decode_tokens_per_s']:.1f} tokens/s</b>" in final
        assert f"prefill <b>{record['prefill_tokens_per_s']:.0f} tokens/s</b>" in final
    assert all("TTFT <b>" in line for _, line in live)
