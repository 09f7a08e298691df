"""`llamalab workshop check` and the bundle's manifest: a room prepared in a temporary cache passes,
an empty one names each missing piece with its fix; a bundle ships the course (its dashboards found
from there), each file once at its real size, and a changed or missing file is caught."""

import json
import os
from pathlib import Path

import pytest
from prepared_cache import prepare

from llamalab.cli import main
from llamalab.core.paths import cache_dir
from llamalab.runtime.files import embedded
from llamalab.workshop import check, check_room, dashboards
from llamalab.workshop.check import ready
from llamalab.workshop.offline import MANIFEST, bundle, verify_bundle

pytest.importorskip("llama_cpp", reason="the course's GGUF names hold llama-cpp-python's version")
COURSE_CHECKS = ["course notebooks", "embedded model", "course GGUFs", "GPTQ/AWQ", "random-weight",
                 "llama.cpp server", "llama.cpp in-process"]  # fmt: skip


@pytest.fixture(scope="module")
def room_cache(tmp_path_factory):
    real = embedded.ensure_model(verbose=False)
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLAMALAB_CACHE", str(cache))
        prepare(cache, real)
        yield cache


@pytest.fixture(scope="module")
def bundled(room_cache, tmp_path_factory):
    return bundle(["default"], tmp_path_factory.mktemp("usb") / "bundle", wheels=False)


def _by_name(checks):
    return {next(n for n in COURSE_CHECKS + [c.name] if c.name.startswith(n)): c for c in checks}


def test_a_prepared_room_passes_every_course_check(room_cache):
    checks = _by_name(check_room(checkout=None, learners=1, per_learner_bytes=1e6))
    assert cache_dir() == room_cache
    failed = {n: str(c) for n, c in checks.items() if not c.ok and n != "Binder badge"}
    assert not failed, failed
    assert set(COURSE_CHECKS) <= set(checks) and "memory" in checks and "disk" in checks


def test_an_empty_room_names_each_missing_piece_with_its_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMALAB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(check, "SERVER_MODULE", "no_such_llama_server")
    checks = _by_name(check_room(learners=10**6))
    missing = {n: c for n, c in checks.items() if not c.ok}
    assert {"embedded model", "course GGUFs", "GPTQ/AWQ", "random-weight", "llama.cpp server",
            "memory"} <= set(missing)  # fmt: skip
    assert "model_files('default')" in missing["embedded model"].fix
    assert "2 of 2 not built" in missing["random-weight"].detail
    assert "random_gguf(l.RandomShape(960, 32, 2560, 15, 5))" in missing["random-weight"].fix
    assert 'pip install "llamalab[deploy]"' in missing["llama.cpp server"].fix
    assert "llamalab room serve" in missing["memory"].fix
    assert all(c.fix for c in missing.values()) and not ready(list(checks.values()))


def test_binder_config_and_badge_are_checked_in_a_checkout(tmp_path):
    (tmp_path / "binder").mkdir()
    for f in ("postBuild", "runtime.txt"):
        (tmp_path / "binder" / f).write_text("")
    (tmp_path / "binder" / "requirements.txt").write_text("-e .[quant,deploy]\n")
    link = "[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/{}/llamalab/HEAD)"
    (tmp_path / "README.md").write_text(link.format("OWNER"))
    config, badge = check.binder_config(tmp_path), check.binder_badge(tmp_path)
    assert not config.ok and "workshop" in config.fix
    assert not badge.ok and "scripts/binder-owner.sh" in badge.fix
    (tmp_path / "binder" / "requirements.txt").write_text("-e .[quant,deploy,workshop]\n")
    (tmp_path / "README.md").write_text(link.format("octo-org"))
    assert check.binder_config(tmp_path).ok and "octo-org" in check.binder_badge(tmp_path).detail
    assert not check.disk_free(10**9).ok  # 10⁹ learners × 1 GB: no disk has that


def test_the_cli_check_prints_each_check_and_exits_nonzero_when_not_ready(tmp_path, capsys,
                                                                          monkeypatch):  # fmt: skip
    monkeypatch.setenv("LLAMALAB_CACHE", str(tmp_path))
    monkeypatch.delenv("LLAMALAB_ROOM", raising=False)
    assert main(["workshop", "check", "--bundle", str(tmp_path / "no-bundle")]) == 1
    out = capsys.readouterr().out
    assert "✗ embedded model" in out and "✗ bundle: no MANIFEST.json" in out
    assert "Not ready" in out and "room server not checked" in out


def test_the_bundle_ships_the_course_and_its_dashboards_are_found_there(bundled):
    assert "room" in dashboards(bundled / "course" / "dashboards")
    assert (bundled / "course" / "00_quickstart.ipynb").is_file()
    files = json.loads((bundled / MANIFEST).read_text())["files"]
    assert "course/dashboards/room.ipynb" in files and f"cache/{embedded.NAME}/config.json" in files
    assert any(k.startswith("cache/random-gguf/") for k in files)
    assert any(k.startswith("cache/quantized/") for k in files)
    assert verify_bundle(bundled) == []
    assert check.bundle_files(bundled).ok


def test_a_bundled_gguf_finds_its_tokenizer_inside_the_bundle(bundled):
    gguf = next((bundled / "cache" / "gguf").glob("*-q8_0.gguf"))
    folder = json.loads(Path(f"{gguf}.llamalab.json").read_text())["tokenizer"]
    assert not os.path.isabs(folder)
    assert (gguf.parent / folder).resolve() == (bundled / "cache" / embedded.NAME).resolve()


def test_a_changed_or_missing_file_is_caught(bundled):
    victim = bundled / "course" / "dashboards" / "room.ipynb"
    original = victim.read_bytes()
    try:
        victim.write_bytes(original.replace(b"llamalab", b"llamaLAB", 1))  # same size, new bytes
        assert verify_bundle(bundled) == [
            "course/dashboards/room.ipynb: its checksum differs from the manifest's "
            "(changed or corrupt)"
        ]
        victim.unlink()
        assert verify_bundle(bundled) == ["missing: course/dashboards/room.ipynb"]
        assert not check.bundle_files(bundled).ok
    finally:
        victim.write_bytes(original)
    assert verify_bundle(bundled) == []


def test_a_hub_model_is_bundled_once_at_its_real_size(tmp_path, monkeypatch):
    from huggingface_hub import constants, try_to_load_from_cache

    from llamalab.catalog import card

    repo = card("qwen2.5-0.5b-instruct").repo
    hub = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    (hub / "blobs").mkdir(parents=True)
    (hub / "blobs" / "abc123").write_bytes(os.urandom(1 << 20))
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text("rev0")
    (hub / "snapshots" / "rev0").mkdir(parents=True)
    (hub / "snapshots" / "rev0" / "model.safetensors").symlink_to("../../blobs/abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    out = bundle(["qwen2.5-0.5b-instruct"], tmp_path / "bundle", wheels=False)
    shipped = [p for p in (out / "hf-hub").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in shipped) < (1 << 20) + 100  # the weights once, plus refs
    found = try_to_load_from_cache(repo, "model.safetensors", cache_dir=out / "hf-hub")
    assert found and Path(found).read_bytes() == (hub / "blobs" / "abc123").read_bytes()


def test_a_llamacpp_build_beyond_the_portable_set_is_named_and_an_unknown_wheel_is_not_vouched_for(
    tmp_path, monkeypatch
):
    from llamalab.workshop import offline

    monkeypatch.setattr(offline, "PORTABLE_FEATURES", offline.PORTABLE_FEATURES - {"AVX2"})
    assert "built on this machine with AVX2" in offline._llamacpp_beyond_baseline()
    assert not offline._wheel_is_installed_build(tmp_path)  # no wheel: nothing to vouch for


def test_what_was_left_out_when_bundling_is_reported_with_its_own_fix(bundled):
    manifest = json.loads((bundled / MANIFEST).read_text())
    try:
        (bundled / MANIFEST).write_text(
            json.dumps({**manifest, "left_out": ["left out: GGUF q4_0"]})
        )
        found = check.bundle_files(bundled)
        assert not found.ok and "GGUF q4_0" in found.detail and "bundle again" in found.fix
    finally:
        (bundled / MANIFEST).write_text(json.dumps(manifest))
