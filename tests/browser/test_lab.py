"""notebooks/05_widget_tour.ipynb (the optional widget tour) in a real JupyterLab, driven in
headless chromium as a learner would: Run All, pick a scheme and Load, Generate (text streams, plot
points appear), Stop a long generation, reload the page (plots keep their data),
provoke errors and read them inline.

The tests share one page and run in file order, like the steps of a workshop. Timings (not asserted
except Stop's one second) go to test-artifacts/timings.json.
"""

from __future__ import annotations

import re
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.binder]
expect = pytest.importorskip("playwright.sync_api").expect

from lab_run import ERROR_OUTPUTS, RunAll, kernel_idle, menu

NOTEBOOK = "05_widget_tour.ipynb"
# Records, in page time, every change of the playground's text length and state, and every click.
RECORDER = """() => {
    const root = document.querySelector('.llamalab-playground');
    const L = window.__ll = {len: [], state: [], clicks: []};
    const read = () => {
        const now = performance.now();
        const n = (root.querySelector('.llamalab-text')?.innerText || '').length;
        const s = (root.querySelector('.llamalab-state')?.innerText || '').trim();
        if (!L.len.length || L.len.at(-1)[1] !== n) L.len.push([now, n]);
        if (!L.state.length || L.state.at(-1)[1] !== s) L.state.push([now, s]);
    };
    new MutationObserver(read).observe(root, {subtree: true, childList: true, characterData: true});
    root.addEventListener('click', e => {
        const b = e.target.closest('button');
        if (b) L.clicks.push([performance.now(), b.innerText.trim()]);
    }, true);
    read();
}"""


def playground(page):
    return page.locator(".llamalab-playground")


def picker(page):
    return page.locator(".llamalab-picker")


def recorded(page) -> dict:
    return page.evaluate("() => window.__ll")


def wait_until_finished(
    page, button: str, states=("stop", "length", "stopped"), timeout=120_000
) -> None:
    """Wait (on the recorder) until the state reached one of `states` after the last click on
    `button`."""
    page.wait_for_function(
        """([button, states]) => {
        const L = window.__ll, click = L.clicks.filter(c => c[1] === button).at(-1);
        return !!click && L.state.some(([t, s]) => t > click[0] && states.includes(s));
    }""",
        arg=[button, list(states)],
        timeout=timeout,
        polling=50,
    )


def test_run_all_renders_every_widget_and_the_checks_pass(lab, page, timings, artifacts):
    """Run All under the 2 GB watchdog: this is the notebook's execution of the test run
    (lab_run.RunAll records it; tests/test_notebooks.py does not execute it again)."""
    run = RunAll(lab, page, NOTEBOOK).start()
    timings["page_load_to_kernel_idle_s"] = round(run.open_s, 2)
    expect(page.locator(".llamalab-calculator .js-plotly-plot")).to_be_visible(timeout=120_000)
    timings["kernel_idle_to_first_widget_s"] = round(time.perf_counter() - run.t0, 2)
    record = run.wait()
    assert not record["killed_at_cap"], (
        f"{NOTEBOOK} passed {run.cap / 2**30:.0f} GiB of RSS (mybinder's cap)"
    )
    assert not record["errors"], "\n".join(record["errors"])
    kernel_idle(page)
    for cls in ("calculator", "picker", "playground", "arena"):
        expect(page.locator(f".llamalab-{cls}")).to_have_count(1)
    expect(page.locator(".llamalab-live-monitor")).to_have_count(
        2
    )  # the playground's and the standalone
    expect(page.locator(".js-plotly-plot")).to_have_count(4, timeout=60_000)
    expect(page.locator(".llamalab-arena .js-plotly-plot .bars path")).not_to_have_count(
        0, timeout=60_000
    )
    timings["kernel_idle_to_all_widgets_rendered_s"] = round(time.perf_counter() - run.t0, 2)
    assert page.evaluate(ERROR_OUTPUTS) == []
    expect(picker(page)).to_contain_text("loaded smollm2-135m")
    expect(page.locator(".llamalab-calculator .js-plotly-plot .bars path")).not_to_have_count(0)
    for cls in ("calculator", "picker", "playground", "arena"):
        page.locator(f".llamalab-{cls}").screenshot(path=str(artifacts / f"widget_{cls}.png"))
    page.locator(".llamalab-live-monitor").nth(1).screenshot(
        path=str(artifacts / "widget_live_monitor.png")
    )


def test_pick_a_scheme_load_and_watch_the_text_stream(page, timings, artifacts):
    p = picker(page)
    p.locator("select").nth(1).select_option(label="fp16")
    expect(p.locator(".llamalab-estimate")).to_contain_text("(fp16,")
    p.get_by_role("button", name="Load").click()
    expect(p).to_contain_text("loaded smollm2-135m · fp16", timeout=120_000)
    expect(p.locator(".llamalab-load-result")).to_contain_text("weights in memory (measured)")
    pg = playground(page)
    points = pg.locator(".js-plotly-plot .scatterlayer .trace").first.locator("path.point")
    before = points.count()
    pg.locator("textarea").nth(1).fill("Write a short poem about the sea.")
    page.evaluate(RECORDER)
    pg.get_by_role("button", name="Generate").click()
    wait_until_finished(page, "Generate")
    rec = recorded(page)
    click = next(t for t, name in rec["clicks"] if name == "Generate")
    lengths = [n for t, n in rec["len"] if t > click]
    assert len({n for n in lengths if n > 0}) >= 3, f"text did not stream: {rec['len']}"
    first = next(t for t, n in rec["len"] if t > click and n > 0)
    timings["generate_click_to_first_token_visible_s"] = round((first - click) / 1e3, 3)
    expect(pg.locator(".llamalab-stats")).to_contain_text("tokens/s")
    expect(points).not_to_have_count(before, timeout=30_000)  # new samples were drawn
    assert points.count() > before
    expect(pg.locator(".llamalab-table tbody tr")).to_have_count(
        2
    )  # the notebook's call + this one
    pg.screenshot(path=str(artifacts / "playground_after_generate.png"))


def test_stop_ends_a_long_generation_within_a_second(page, timings):
    pg = playground(page)
    pg.locator("input[type=checkbox]").check()  # ignore end of sequence
    readout = pg.locator(".widget-readout").first  # the Max tokens slider's value
    readout.fill("1500")
    readout.press("Enter")
    expect(readout).to_have_text("1500")
    pg.locator("textarea").nth(1).fill("Tell me a very long story about a dragon and a lighthouse.")
    page.evaluate(RECORDER)
    pg.get_by_role("button", name="Generate").click()
    page.wait_for_function(
        "() => (document.querySelector('.llamalab-playground .llamalab-text')"
        "?.innerText || '').length > 150",
        timeout=120_000,
        polling=50,
    )
    pg.get_by_role("button", name="Stop").click()
    wait_until_finished(page, "Stop", states=("stopped",), timeout=30_000)
    rec = recorded(page)
    stop = next(t for t, name in rec["clicks"] if name == "Stop")
    ended = next(t for t, s in rec["state"] if t > stop and s == "stopped")
    latency = (ended - stop) / 1e3
    timings["stop_click_to_generation_ended_s"] = round(latency, 3)
    length = pg.locator(".llamalab-text").inner_text()
    page.wait_for_timeout(1000)
    assert pg.locator(".llamalab-text").inner_text() == length, "text kept growing after Stop"
    tokens = int(
        re.search(r"(\d+) tokens \(prompt", pg.locator(".llamalab-stats").inner_text()).group(1)
    )
    assert 0 < tokens < 1500
    speed = float(
        re.search(r"decode ([\d.]+) tokens/s", pg.locator(".llamalab-stats").inner_text()).group(1)
    )
    # One second on a quiet machine (a token takes ~25 ms); if the machine is so loaded that
    # decoding crawls, allow three tokens' time on top of the browser round trip.
    assert latency < max(1.0, 0.5 + 3 / max(speed, 0.1)), (
        f"Stop took {latency:.2f} s at {speed} tokens/s"
    )
    pg.locator("input[type=checkbox]").uncheck()


def test_reload_shows_the_plots_real_data(lab, page, artifacts, timings):
    """Pitfall P1: FigureWidgets updated after display must be re-synced,
    or a reload shows them empty."""
    live = page.locator(".llamalab-live-monitor").nth(1)  # the standalone LiveMonitor
    before = live.locator(".scatterlayer .trace").first.locator("path.point").count()
    assert before > 0
    menu(page, "File", "Save Notebook")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000
    )
    # On a heavily loaded machine the widget manager sometimes fails to rebuild the models from the
    # kernel ("Error displaying widget: model not found" for every widget; seen in 2 of ~12 runs,
    # both while other heavy jobs shared the 2 cores). A learner would reload again; so do we, once,
    # and record it (timings.json, and the browser console in
    # test-artifacts/reload_console_errors.txt).
    for attempt in (1, 2):
        page.reload()
        kernel_idle(page)
        live = page.locator(".llamalab-live-monitor").nth(1)
        try:
            expect(live.locator(".js-plotly-plot")).to_be_visible(timeout=45_000)
            break
        except AssertionError:
            if attempt == 2 or not page.get_by_text("model not found").count():
                raise
            (artifacts / "reload_console_errors.txt").write_text("\n".join(page.console_errors))
    timings["reload_attempts"] = attempt
    expect(live.locator(".scatterlayer .trace").first.locator("path.point")).to_have_count(
        before, timeout=30_000
    )
    expect(page.locator(".llamalab-arena .js-plotly-plot .bars path")).not_to_have_count(0)
    page.screenshot(path=str(artifacts / "lab_after_reload.png"), full_page=True)


def test_errors_show_inline_with_the_fix_and_the_picker_stays_usable(page, artifacts):
    import llamalab

    table = llamalab.capabilities()
    bad = table[~table.available].sort_values("device", key=lambda d: d != "cpu", kind="stable")
    p = picker(page)
    if not bad.empty:
        row = bad.iloc[0]
        p.get_by_role("button", name=row.device, exact=True).click()
        p.locator("select").nth(1).select_option(
            label=f"{row.scheme} — not available on {row.device}"
        )
        warning = p.locator(".llamalab-warning")
        expect(warning).to_contain_text(f"cannot run on {row.device}")
        expect(warning).to_contain_text("→")
        expect(p.get_by_role("button", name="Load")).to_be_disabled()
        p.get_by_role("button", name="cpu", exact=True).click()
        p.locator("select").nth(1).select_option(label="bf16")
        expect(warning).to_have_count(0)
    model = p.locator("select").first
    labels = model.evaluate(
        "s => [...s.options].map(o => o.text.replaceAll('\\u00a0', ' '))"
    )  # ipywidgets: nbsp
    offline = [o for o in labels if "(not downloaded)" in o]
    assert offline, (
        f"every catalog model is cached here: nothing to provoke ModelNotCached with: {labels}"
    )
    model.select_option(label=offline[0])
    p.get_by_role("button", name="Load").click()
    error = p.locator(".llamalab-error")
    expect(error).to_contain_text("not in the local cache", timeout=60_000)
    expect(error).to_contain_text("hf download")
    assert "Traceback" not in p.inner_text()
    page.screenshot(path=str(artifacts / "picker_inline_error.png"))
    model.select_option(label=next(o for o in labels if o.endswith("· default")))
    expect(error).to_have_count(0)
    p.get_by_role("button", name="Load").click()
    expect(p).to_contain_text("loaded smollm2-135m · bf16", timeout=120_000)
    pg = playground(page)
    readout = pg.locator(".widget-readout").first
    readout.fill("24")
    readout.press("Enter")
    expect(readout).to_have_text("24")
    page.evaluate(RECORDER)
    pg.get_by_role("button", name="Generate").click()
    wait_until_finished(page, "Generate")
