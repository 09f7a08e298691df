"""The Playground against the fake engine (tests/fakes.py): streaming, Stop, stats, history and
inline errors, without a model or a browser (ipywidgets objects work headless). Fast."""

import time

import pytest

from llamalab.core import torch_thread
from llamalab.widgets import Playground

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
        and pg.history[0]["peak_memory_bytes"] is None
    )
