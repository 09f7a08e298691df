"""Shared fixtures. Every test runs offline (HF_HUB_OFFLINE=1) on the embedded model or a model
built in the test; the converted embedded checkpoint is cached in LLAMALAB_CACHE across runs."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test`: workers share the cores
    # one OpenMP thread per process, kernels and servers included (they inherit it): more busy
    # threads than cores stall GNU OpenMP's spinning workers (a notebook took 5x its time)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest

# The course runs (tests/browser) and the tests that read their records: one process.
COURSE = {"test_notebooks.py", "test_binder.py"}


def xdist_group(nodeid: str) -> str:
    """`make test` runs two pytest-xdist workers: the course (browser runs and the record checks
    after them) stays in one process, each folder of tests in one (its session fixtures are built
    once), each top-level file in one."""
    parts = Path(nodeid.split("::")[0]).parts[1:]  # below tests/
    if parts[0] == "browser" or parts[-1] in COURSE:
        return "course"
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


@pytest.hookimpl(optionalhook=True)  # `-p no:xdist` runs without it
def pytest_xdist_make_scheduler(config, log):
    """Whole groups (xdist_group above) go to a worker, in collection order: the course first.
    (xdist's own --dist loadgroup marks node ids, which pytest 9 no longer lets a plugin change.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return ByGroup(config, log)


_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Each group's seconds (setup, call, teardown), to balance the two workers."""
    group = xdist_group(report.nodeid)
    _SECONDS[group] = _SECONDS.get(group, 0.0) + report.duration


def pytest_sessionfinish(session):
    """test-artifacts/durations-<worker>.json: seconds per group on this worker, largest first."""
    import json

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:  # only `make test`'s workers
        return
    out = Path(__file__).resolve().parent.parent / "test-artifacts" / f"durations-{worker}.json"
    out.parent.mkdir(exist_ok=True)
    ranked = dict(sorted(_SECONDS.items(), key=lambda kv: -kv[1]))
    out.write_text(json.dumps({"total_s": sum(ranked.values()), "groups": ranked}, indent=1))


@pytest.fixture(scope="session")
def embedded_dir():
    import llamalab

    return llamalab.model_files("default")


@pytest.fixture(scope="session")
def bf16(embedded_dir):
    """The embedded model in bf16, loaded once per test session."""
    import llamalab

    m = llamalab.load("default", "bf16", device="cpu")
    yield m
    m.unload()


@pytest.fixture
def resident_block():
    """`resident_block(size)` → fresh anonymous pages, each written once, so RSS grows by `size`.

    bytearray() would be calloc'd (untouched pages) or served from heap memory the process already
    holds, so RSS need not move."""
    import mmap

    def make(size):
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        return block

    return make


@pytest.fixture
def learner(monkeypatch):
    """The course as a learner runs it: no answer key."""
    monkeypatch.delenv("LLAMALAB_SOLUTIONS", raising=False)


@pytest.fixture
def solutions(monkeypatch):
    """The course as its tests run it: placeholders answered from the answer key."""
    monkeypatch.setenv("LLAMALAB_SOLUTIONS", "1")


@pytest.fixture(scope="session")
def fake_backend():
    """The fake engines (tests/fakes.py) registered as backend "fake": schemes fake, fake-scoring,
    fake-remote."""
    from fakes import FakeBackend

    from llamalab.runtime import backends

    backends.register_backend("fake", FakeBackend("fake"))
    yield
    backends.unregister_backend("fake")


@pytest.fixture(scope="session")
def _fake_loads(fake_backend):
    """One real llamalab.load() per fake scheme per session (a load measures memory: ~0.3 s)."""
    import llamalab

    loads = {}

    def get(scheme):
        if scheme not in loads:
            loads[scheme] = llamalab.load("default", scheme, device="cpu")
        return loads[scheme]

    return get


@pytest.fixture
def fake(_fake_loads):
    """`fake(scheme="fake", **engine_options)` → a fresh LoadedModel around a new fake engine
    (options: script, delay, context_length, chat, uses_torch_thread; see tests/fakes.py)."""
    from dataclasses import replace

    from llamalab.runtime import backends

    def make(scheme: str = "fake", **options):
        base = _fake_loads(scheme)
        return replace(base, engine=backends.module("fake").load("", base.scheme, "cpu", **options))

    return make


@pytest.fixture(scope="session")
def room_server(tmp_path_factory):
    """One room for the session: `serve_room()` on the embedded model's q8_0 GGUF (a real llama.cpp
    server process on 127.0.0.1, 5 slots of 256 tokens, one thread) and its board."""
    pytest.importorskip(
        "xllamacpp", reason='the deploy extra is not installed: pip install -e ".[deploy]"'
    )
    from llamalab.runtime.room import leave_room
    from llamalab.workshop import serve_room

    board = tmp_path_factory.mktemp("board")
    with serve_room(scheme="q8_0", context=256, learners=5, threads=1, board_dir=board) as r:
        yield r
    assert not r.server.alive and not r.board.task.running
    leave_room()
