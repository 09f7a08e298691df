"""The `llamalab` command, run as a user would, in a subprocess."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

ENV = dict(os.environ, HF_HUB_OFFLINE="1")


def cli(*args, check=True):
    return subprocess.run(
        [sys.executable, "-m", "llamalab", *args],
        capture_output=True,
        text=True,
        env=ENV,
        check=check,
        timeout=120,
    )


def test_doctor_explains_the_environment():
    out = cli("doctor").stdout
    for section in (
        "Packages:",
        "torch",
        "Hardware:",
        "RAM:",
        "Schemes",
        "bf16",
        "Cache:",
        "embedded",
        "Offline: HF_HUB_OFFLINE=1",
        "auto-gptq",
    ):
        assert section in out, section


def test_models_lists_the_catalog():
    out = cli("models").stdout
    assert "llama-3.1-405b" in out and "mixtral-8x22b" in out and len(out.splitlines()) > 25


def test_estimate_prints_a_breakdown_and_answers_for_a_gpu():
    out = cli(
        "estimate", "llama-3.1-8b", "--scheme", "bf16", "--context", "131072", "--gpu", "h100-80gb"
    ).stdout
    assert "kv_cache" in out and "17.180 GB" in out and "fits=True" in out


def test_bad_input_exits_2_with_the_fix():
    r = cli("estimate", "lama-3.1-8b", check=False)
    assert (
        r.returncode == 2
        and "Did you mean llama-3.1-8b" in r.stderr
        and "Traceback" not in r.stderr
    )
    for args in (
        ["--context", "-5"],
        ["--batch", "0"],
        ["--gpu", "h1000"],
        ["--group-size", "0"],
        ["--scheme", "gguf"],
        ["--kv-dtype", "fp12"],
        ["--context", "many"],
    ):
        r = cli("estimate", "llama-3.1-8b", *args, check=False)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip(), (
            args,
            r.stderr,
        )


def test_estimate_answers_are_the_sizing():
    from llamalab import sizing

    out = cli(
        "estimate", "qwen2.5-7b", "--scheme", "int8", "--context", "32768", "--gpu", "l4"
    ).stdout
    p = sizing("qwen2.5-7b", "int8", "l4", 32768)
    assert (
        f"fits={p.fits}, devices needed={p.devices_needed}, longest context={p.max_context}, "
        f"best scheme at this context={p.best_scheme}\n  ({p.best_scheme_why})"
    ) in out
    served = cli(
        "estimate", "llama-3.1-405b", "--scheme", "int8", "--gpu", "h100-80gb", "--engine", "vllm"
    ).stdout
    assert "devices needed=8" in served  # what deployment_plan asks for
    assert (
        "q4_1" in cli("estimate", "default", "--scheme", "gguf").stdout
    )  # the embedded model's own type


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_serves_on_loopback_with_a_token_and_stops(tmp_path):
    port, token = _free_port(), "test-token-123"
    env = dict(
        ENV,
        JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llamalab",
            "lab",
            "--port",
            str(port),
            "--token",
            token,
            "--no-browser",
            "--root",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                status = json.load(
                    urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                )
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.1)
        else:
            pytest.fail("jupyter lab did not answer within 60 s")
        assert "started" in status
        with pytest.raises(urllib.error.HTTPError) as e:  # no token → refused
            urllib.request.urlopen(f"{url}/api/contents", timeout=5)
        assert e.value.code == 403
        listening = [
            c.laddr for c in psutil.Process(proc.pid).net_connections() if c.status == "LISTEN"
        ]
        assert listening and all(a.ip == "127.0.0.1" for a in listening)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
            ended_on_sigterm = True
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            ended_on_sigterm = False
    assert ended_on_sigterm, "jupyter lab ignored SIGTERM"
    with pytest.raises(OSError):  # nothing listens on its port any more
        urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)


def test_course_copies_the_notebooks_out_and_keeps_what_is_there(tmp_path):
    out = tmp_path / "mine"
    (out).mkdir()
    (out / "00_quickstart.ipynb").write_text("my edits")
    printed = cli("course", "--output", str(out)).stdout
    assert str(out) in printed and (out / "00_quickstart.ipynb").read_text() == "my edits"
    assert (out / "01_landscape.ipynb").is_file() and (out / "dashboards" / "room.ipynb").is_file()


def test_quantize_help_shows_the_settings_own_words():
    from llamalab import QuantizeSettings
    from llamalab.core.settings import help_of

    out = " ".join(cli("quantize", "--help").stdout.split())  # argparse wraps lines
    for name in ("group_size", "damp_percent", "true_sequential"):
        assert "--" + name.replace("_", "-") in out
        assert " ".join(help_of(QuantizeSettings, name).split())[:40] in out


def test_quantize_bad_setting_exits_2_before_any_work():
    r = cli("quantize", "default", "gptq", "--group-size", "-7", check=False)
    assert r.returncode == 2 and "group_size=-7" in r.stderr and "→" in r.stderr
    r = cli("quantize", "default", "awq", "--desc-act", check=False)  # a GPTQ-only option
    assert r.returncode == 2 and "desc_act" in r.stderr and "AWQ takes" in r.stderr


# --- course (issue 10): workshop and bundle ---
def test_workshop_lists_the_dashboards_and_refuses_an_unknown_one():
    listed = cli("workshop", "--list").stdout
    assert "room" in listed and "blind_arena" in listed
    bad = cli("workshop", "no-such-dashboard", check=False)
    assert bad.returncode == 2 and "Use one of: blind_arena, room." in bad.stderr


def test_bundle_refuses_an_unknown_model_before_writing(tmp_path):
    out = tmp_path / "b"
    bad = cli("bundle", "--models", "no-such-model", "--out", str(out), check=False)
    assert bad.returncode == 2 and not out.exists()
