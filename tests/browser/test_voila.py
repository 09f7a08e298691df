"""The room dashboard served by `llamalab workshop` (Voilà) in headless chromium with the network
off: only 127.0.0.1 answers, every other request is aborted and recorded. Button icons draw from the
vendored Font Awesome; Load, Generate, Measure, Share: the figures show data after the work ends,
and the page needed nothing from outside."""

from __future__ import annotations

import subprocess
import time

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, _free_port, _kill
from servers import wait_answering

from llamalab.workshop import voila_command

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api").expect
FONT_LOADED = """() => [...document.fonts].some(
    f => f.family.replaceAll('"', '') === 'Font Awesome 5 Free' && f.weight === '900'
         && f.status === 'loaded')"""


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    import psutil

    room = tmp_path_factory.mktemp("room")
    port = _free_port()
    argv, env, token = voila_command("room", port=port)
    env["LLAMALAB_ROOM_DIR"] = str(room)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_answering(f"{base}/login")
    yield base, token, room
    kids = psutil.Process(proc.pid).children(recursive=True)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    for kid in kids:
        _kill(kid)


def test_room_dashboard_works_offline_and_its_figures_keep_their_data(voila, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, room = voila
    outside, failed = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.route(
            "**/*",
            lambda r: (
                r.continue_()
                if r.request.url.startswith(base)
                else (outside.append(r.request.url), r.abort())
            ),
        )
        page.on(
            "requestfailed",
            lambda req: failed.append(req.url) if req.url.startswith(base) else None,
        )
        try:
            page.goto(f"{base}/?token={token}", timeout=300_000)
            picker = page.locator(".llamalab-picker")
            expect(picker).to_be_visible(timeout=300_000)
            icon = picker.get_by_role("button", name="Load").locator(
                "i.fa"
            )  # Font Awesome, vendored
            expect(icon).to_be_visible()
            page.wait_for_function(FONT_LOADED, timeout=30_000)
            assert icon.evaluate("i => getComputedStyle(i, '::before').content") not in (
                "none",
                "normal",
                '""',
            )
            assert icon.bounding_box()["width"] >= 8
            picker.get_by_role("button", name="Load").click()
            expect(picker).to_contain_text("loaded smollm2-135m", timeout=240_000)
            pg = page.locator(".llamalab-playground")
            pg.locator("textarea").nth(1).fill("What is the capital of France?")
            pg.get_by_role("button", name="Generate").click()
            # the final speed line (a live one shows tokens/s while the answer still streams)
            expect(pg.locator(".llamalab-speed-done")).to_contain_text("tokens/s", timeout=240_000)
            page.get_by_role("button", name="Measure my bandwidth").click()
            expect(page.get_by_text("read bandwidth ≈")).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Share my result").click()
            expect(page.get_by_text("results from 1 learners")).to_be_visible(timeout=60_000)
            time.sleep(1.5)  # past the monitor's last batched update
            expect(
                pg.locator(".js-plotly-plot .scatterlayer .trace path.point").first
            ).to_be_attached()
            roofline = page.locator(".js-plotly-plot").last  # the room's chart: this machine
            expect(roofline.locator(".scatterlayer .trace path.point")).not_to_have_count(
                0, timeout=30_000
            )
            page.screenshot(path=str(tmp_path / "room.png"), full_page=True)
        finally:
            browser.close()
    assert outside == [], f"the page asked the internet for: {outside}"
    assert failed == [], failed
    assert list(room.glob("*.jsonl"))
