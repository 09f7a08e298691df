"""The Playground against the fake engine (tests/fakes.py): streaming, Stop, the live speed line,
history and inline errors, without a model or a browser (ipywidgets objects work headless). Fast."""

import re
import threading
import time

import pytest
from fakes import ENDLESS

from llamalab.core import torch_thread
from llamalab.widgets import Playground, playground
from llamalab.widgets._common import SPEED_INTERVAL

WAIT = 10


@pytest.fixture
def slow_fake(fake):
    return fake(delay=0.003)


def test_generate_streams_and_reports_the_generation(slow_fake):
    pg = Playground(slow_fake, max_new_tokens=40, monitor=False)
    shown = []
    pg.output.observe(lambda ch: shown.append(ch.new), "value")
    pg.ignore_eos.value = True
    pg.generate_button.click()
    assert pg.stop_button.disabled is False and pg.generate_button.disabled is True
    assert pg.wait(WAIT)
    g = pg.last
    assert pg.errors.message == "", pg.errors.message
    assert g.new_tokens == 40 and g.finish_reason == "length" and g.decode_tokens_per_s > 0
    assert len({v for v in shown if v}) >= 2, "text did not stream"
    assert (
        "Paris is the capital" in pg.output.value
        and f"<b>{g.new_tokens}</b> tokens" in pg.stats.value
    )
    assert pg.state.value.endswith(">length</span>") and pg.generate_button.disabled is False
    assert pg.history[0]["new_tokens"] == 40 and "<td" in pg.history_html.value
    assert slow_fake.engine.threads == [torch_thread.THREAD_NAME]  # the worker only waited


def test_plain_mode_and_sampling_settings_reach_the_model(slow_fake):
    pg = Playground(slow_fake, monitor=False)
    pg.mode.value, pg.temperature.value, pg.top_p.value, pg.max_new_tokens.value = (
        "plain",
        0.8,
        0.9,
        3,
    )
    pg.generate(wait=True)
    assert pg.last.new_tokens == 3 and pg.system.layout.display == "none"
    assert pg.last.prompt_tokens == len(slow_fake.engine.encode(pg.prompt.value, chat=False))


def test_stop_ends_the_generation_at_once(slow_fake):
    pg = Playground(slow_fake, monitor=False)
    pg.max_new_tokens.value, pg.ignore_eos.value = 2048, True
    pg.generate()
    deadline = time.time() + WAIT
    while len(pg.text) < 40 and time.time() < deadline:
        time.sleep(0.01)
    assert pg.busy
    t0 = time.perf_counter()
    pg.stop_button.click()
    assert pg.wait(WAIT)
    assert time.perf_counter() - t0 < 0.5
    assert (
        pg.last.finish_reason == "stopped"
        and 0 < pg.last.new_tokens < 2048
        and "stopped" in pg.state.value
    )


def test_errors_show_inline_and_the_widget_recovers(fake):
    pg = Playground(None, monitor=False)
    pg.generate_button.click()
    assert "No model is loaded" in pg.errors.message
    m = fake(context_length=32)
    pg.set_model(m)
    pg.prompt.value, pg.max_new_tokens.value = "word " * 30, 8
    pg.generate(wait=True)
    assert (
        pg.errors.error.__class__.__name__ == "PromptTooLong" and "Traceback" not in pg.errors.value
    )
    assert pg.generate_button.disabled is False
    pg.prompt.value = "Hi"
    pg.generate(wait=True)
    assert pg.errors.message == "" and pg.last.new_tokens > 0
    m.unload()
    pg.generate(wait=True)
    assert "No model is loaded" in pg.errors.message


def test_a_remote_engine_shows_no_memory_figure(fake):
    pg = Playground(fake("fake-remote"), monitor=False)
    pg.generate(wait=True)
    assert pg.errors.message == "" and pg.last.peak_memory_bytes is None
    assert (
        "not measured (remote engine)" in pg.stats.value
        and "peak memory <b>server</b>: not measured here" in pg.stats.value
        and pg.history[0]["peak_memory_bytes"] is None
    )


# ---------------------------------------------------------------- the live speed line


def lock_step(pg: Playground) -> tuple[list[tuple[str, int]], threading.Semaphore]:
    """Record every speed line the Playground shows with the text's length then, and a semaphore
    released by each live line: a fake engine's hook waits on it, so the engine and the widget
    take turns (no timing in the test: line k shows exactly k tokens)."""
    lines: list[tuple[str, int]] = []
    shown = threading.Semaphore(0)

    def record(change) -> None:
        lines.append((change.new, len(pg.text)))
        if "(live)" in change.new:
            shown.release()

    pg.stats.observe(record, "value")
    return lines, shown


def figure(line: str, name: str) -> str:
    """The bold figure after `name` in a speed line."""
    return re.search(rf"{name} <b>([^<]*)</b>", line).group(1)


def test_the_speed_line_streams_the_generations_own_figures(fake, monkeypatch):
    monkeypatch.setattr(playground, "SPEED_INTERVAL", 0)  # every piece: one line to check
    pg = Playground(None, max_new_tokens=12, monitor=False)
    lines, shown = lock_step(pg)
    m = fake(script=ENDLESS, hook=lambda n: shown.acquire(timeout=WAIT))
    pg.set_model(m)
    pg.ignore_eos.value = True
    pg.generate(wait=True)
    g = pg.last
    assert pg.errors.message == "" and g.new_tokens == 12
    live = [(line, n) for line, n in lines if "(live)" in line]
    assert len(live) == 12, "one live line per token"
    assert all(n < len(g.text) for _, n in live[:-1]), "live lines came before the answer ended"
    times = g.token_times
    for k, (line, _) in enumerate(live, start=1):
        assert f"<b>{k}</b> tokens (prompt {g.prompt_tokens})" in line
        assert figure(line, "TTFT") == f"{g.ttft_s * 1e3:.0f} ms"  # fixed at the first token
        assert figure(line, "prefill") == f"{g.prefill_tokens_per_s:.0f} tokens/s"
        decode = (k - 1) / (times[k - 1] - times[0]) if k > 1 else None
        assert figure(line, "decode") == (
            "— tokens/s" if decode is None else f"{decode:.1f} tokens/s"
        )
    assert g.prefill_tokens_per_s == pytest.approx(g.prompt_tokens / g.prefill_s)
    final = pg.stats.value
    assert "(live)" not in final and "llamalab-speed-done" in final and "finish: length" in final
    assert figure(final, "decode") == f"{g.decode_tokens_per_s:.1f} tokens/s"
    assert f"peak memory <b>{g.peak_memory_bytes / 1e6:.0f} MB</b>" in final
    peaks = [figure(line, "peak memory") for line, _ in live]
    assert all(p == "— MB" or float(p.split()[0]) <= g.peak_memory_bytes / 1e6 + 0.5 for p in peaks)


def test_the_speed_line_of_a_remote_engine_says_the_memory_is_the_servers(fake, monkeypatch):
    monkeypatch.setattr(playground, "SPEED_INTERVAL", 0)
    pg = Playground(fake("fake-remote"), monitor=False)
    lines, _ = lock_step(pg)
    pg.generate(wait=True)  # a remote engine streams on the widget's own thread: no race to avoid
    g = pg.last
    live = [line for line, _ in lines if "(live)" in line]
    assert len(live) == g.new_tokens == 5
    for line in live:
        assert figure(line, "TTFT") == f"{g.ttft_s * 1e3:.0f} ms"
        assert figure(line, "prefill") == "— tokens/s"  # the server reports the prompt at the end
        assert "peak memory <b>server</b>: not measured here" in line
    assert figure(pg.stats.value, "prefill") == f"{g.prefill_tokens_per_s:.0f} tokens/s"
    assert g.prompt_tokens and g.peak_memory_bytes is None


def test_the_speed_line_updates_at_most_ten_times_a_second(slow_fake):
    pg = Playground(slow_fake, max_new_tokens=100, monitor=False)
    lines, _ = lock_step(pg)
    pg.ignore_eos.value = True
    t0 = time.perf_counter()
    pg.generate(wait=True)
    elapsed = time.perf_counter() - t0
    live = [line for line, _ in lines if "(live)" in line]
    assert 2 <= len(live) <= elapsed / SPEED_INTERVAL + 2, (len(live), elapsed)
