"""A writable cache over a read-only shared one: what is built in LLAMALAB_SHARED_CACHE is used in
place (never copied), anything new goes to LLAMALAB_CACHE, and the shared folder never sees a write
attempt — checked in a child process that sees it through a read-only mount (EROFS on any write,
root included) and records every write-like call under it with an audit hook."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamalab.core import paths

SHAPE = (64, 2, 128, 4, 2)  # a tiny RandomShape: hidden, layers, ffn, heads, kv heads
PREBUILT = (128, 2, 256, 4, 2)  # one random-weight GGUF the shared cache already holds

CHILD = r"""
import json, os, sys
shared = os.environ["LLAMALAB_SHARED_CACHE"]
WRITES = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree",
          "os.chmod", "os.symlink", "os.link", "os.utime", "os.truncate", "shutil.copyfile"}
attempts = []

def under(p):
    return isinstance(p, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(p)).startswith(
        shared + os.sep)

def hook(event, args):
    if event == "open" and under(args[0]):
        mode, flags = args[1] or "", args[2] or 0
        if any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            attempts.append([event, os.fsdecode(args[0])])
    elif event in WRITES and any(under(a) for a in args[:2]):
        attempts.append([event, *map(str, args[:2])])

sys.addaudithook(hook)
import llamalab
from llamalab.measure.random_weights import RandomShape, random_gguf
from llamalab.quantization import cached
from llamalab.runtime.files import embedded, gguf, store

fp = store.model_fingerprint(embedded.model_dir())
new = random_gguf(RandomShape(*SHAPE))
print(json.dumps({
    "model": str(llamalab.model_files("default")),
    "f16": str(llamalab.convert_gguf("default", "f16")),
    "gptq": str(cached("default", "gptq")),
    "found": str(store.find(fp, "gptq", 4)),
    "prebuilt": str(random_gguf(RandomShape(*PREBUILT))),
    "converter": str(gguf.converter_dir()),
    "new": str(new),
    "new_tokenizer": json.loads(open(str(new) + gguf.SIDECAR).read())["tokenizer"],
    "attempts": attempts,
}))
"""


@pytest.fixture(scope="module")
def shared(tmp_path_factory, embedded_dir):
    """A shared cache as an instructor builds it: the embedded model and its F16 GGUF (the real
    files, linked), a GPTQ checkpoint, a random-weight GGUF, llama.cpp's converter (stand-ins)."""
    import llamalab
    from llamalab.measure.random_weights import RandomShape, random_gguf_path
    from llamalab.quantization import _target
    from llamalab.quantization.settings import QuantizeSettings
    from llamalab.runtime.files import embedded, gguf, store

    f16 = llamalab.convert_gguf("default", "f16", verbose=False)
    root = tmp_path_factory.mktemp("shared") / "cache"
    saved = os.environ.get("LLAMALAB_CACHE")
    os.environ["LLAMALAB_CACHE"] = str(root)
    try:
        root.mkdir()
        (root / embedded.NAME).symlink_to(embedded_dir, target_is_directory=True)
        linked = gguf.output_path(embedded.model_dir(), "f16")
        linked.parent.mkdir(parents=True)
        linked.symlink_to(f16)
        Path(f"{linked}{gguf.SIDECAR}").write_text(
            json.dumps({"tokenizer": str(root / embedded.NAME)})
        )
        folder = _target("default", "gptq", QuantizeSettings()).folder
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        fp = store.model_fingerprint(embedded.model_dir())
        manifest = {
            "model": fp,
            "default_settings": True,
            "settings": {"method": "gptq", "bits": 4},
        }
        (folder / store.MANIFEST).write_text(json.dumps(manifest))
        prebuilt = random_gguf_path(RandomShape(*PREBUILT))
        prebuilt.parent.mkdir(parents=True)
        prebuilt.write_bytes(b"random weights")
        gguf.converter_dir().mkdir(parents=True)
        (gguf.converter_dir() / gguf.SCRIPTS[0]).write_text("# llama.cpp's converter\n")
    finally:
        os.environ.pop("LLAMALAB_CACHE")
        if saved is not None:
            os.environ["LLAMALAB_CACHE"] = saved
    return root


def _snapshot(root: Path) -> dict:
    return {str(p): (p.lstat().st_mtime_ns, p.lstat().st_size) for p in sorted(root.rglob("*"))}


def _read_only_child(shared: Path, mine: Path) -> dict:
    """The CHILD script with LLAMALAB_SHARED_CACHE=shared mounted read-only, LLAMALAB_CACHE=mine."""
    from llamalab.workshop.sandbox import read_only

    env = {**os.environ, "LLAMALAB_SHARED_CACHE": str(shared), "LLAMALAB_CACHE": str(mine)}
    code = f"SHAPE, PREBUILT = {SHAPE}, {PREBUILT}\n{CHILD}"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, preexec_fn=lambda: read_only(str(shared)))  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only mount namespace needs root")
def test_what_the_shared_cache_holds_is_used_in_place_and_new_files_go_to_the_learners(
    shared, tmp_path
):
    from llamalab.runtime.files import embedded

    mine, before = tmp_path / "mine", _snapshot(shared)
    out = _read_only_child(shared, mine)
    assert out["attempts"] == []  # not one write-like call under the shared cache
    assert _snapshot(shared) == before
    assert out["model"] == str(shared / embedded.NAME)  # used in place, not copied
    for key in ("f16", "gptq", "found", "prebuilt", "converter"):
        assert Path(out[key]).is_relative_to(shared), (key, out[key])
    assert out["found"] == out["gptq"]
    new = Path(out["new"])  # built from the shared F16's metadata, written to the learner's cache
    assert new.parent == mine / "random-gguf" and new.stat().st_size > 1e6
    assert out["new_tokenizer"] == str(shared / embedded.NAME)
    assert not (mine / embedded.NAME).exists() and not (mine / "gguf").exists()


def test_a_lookup_prefers_what_is_complete_in_the_shared_cache(tmp_path, monkeypatch):
    shared, mine = tmp_path / "shared", tmp_path / "mine"
    monkeypatch.setenv("LLAMALAB_CACHE", str(mine))
    monkeypatch.setenv("LLAMALAB_SHARED_CACHE", str(shared))
    (shared / "gguf").mkdir(parents=True)
    (shared / "gguf" / "done.gguf").write_bytes(b"gguf")
    (shared / "model").mkdir()  # a conversion that never finished there
    assert paths.cached("gguf/done.gguf", Path.is_file) == shared / "gguf" / "done.gguf"
    assert paths.cached("gguf/none.gguf", Path.is_file) == mine / "gguf" / "none.gguf"
    complete = lambda p: (p / "model.safetensors").is_file()
    assert paths.cached("model", complete) == mine / "model"  # made again, in the learner's own
    assert paths.writable(shared / "gguf" / "done.gguf") == mine / "gguf" / "done.gguf"
    assert paths.writable(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert paths.in_cache(shared / "gguf" / "done.gguf") == Path("gguf/done.gguf")
    assert paths.in_cache(mine / "x") == Path("x") and paths.in_cache(tmp_path) is None
    assert paths.cache_roots() == [mine, shared]


def test_one_folder_named_twice_is_one_writable_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMALAB_CACHE", str(tmp_path))
    monkeypatch.setenv("LLAMALAB_SHARED_CACHE", str(tmp_path))
    assert paths.shared_cache_dir() is None and paths.cache_roots() == [tmp_path]
    monkeypatch.delenv("LLAMALAB_SHARED_CACHE")
    assert paths.shared_cache_dir() is None and paths.writable(tmp_path / "a") == tmp_path / "a"
