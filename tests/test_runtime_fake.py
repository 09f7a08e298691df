"""The runtime's logic against the fake engine (tests/fakes.py): generate, stream, stop, errors,
the torch thread, a remote engine, backend registration. No torch, no model files: all fast."""

import signal
import sys
import textwrap
import threading

import pytest

import llamalab
from llamalab import InvalidSetting, LlamalabError, PromptTooLong
from llamalab.core import memory, torch_thread
from llamalab.runtime import backends

LONG = dict(max_new_tokens=8000, min_new_tokens=8000)


def test_generate_measures_and_runs_on_the_torch_thread(fake):
    m = fake()
    g = m.generate("What is the capital of France?")
    assert g.text == "Paris is the capital of France.\n" and g.finish_reason == "stop"
    assert g.new_tokens == 9 and g.prompt_tokens == len(
        m.engine.encode("What is the capital of France?")
    )
    assert 0 < g.prefill_s <= g.ttft_s <= g.total_s and g.decode_tokens_per_s > 0
    assert "RSS" in g.peak_memory_kind and g.peak_memory_bytes > 0
    assert m.engine.threads == [torch_thread.THREAD_NAME]
    d = m.to_dict()
    assert (
        d["engine"] == "fake" and d["backend"] == "fake" and d["weights_memory_bytes"] == 1_000_000
    )
    assert {"load_s", "load_memory_delta_bytes", "load_memory_kind", "load_peak_bytes"} <= set(d)


def test_finish_reasons_and_min_new_tokens(fake):
    m = fake()
    assert m.generate("Hi", max_new_tokens=3).finish_reason == "length"
    g = m.generate("Hi", max_new_tokens=20, min_new_tokens=20)
    assert g.new_tokens == 20 and g.finish_reason == "length" and 0 not in g.token_ids
    assert m.generate("Hi", max_new_tokens=50).finish_reason == "stop"


def test_on_text_pieces_add_up_to_the_text(fake):
    pieces = []
    g = fake().generate("Hi", max_new_tokens=30, min_new_tokens=30, on_text=pieces.append)
    assert len(pieces) > 5 and "".join(pieces) == g.text


def test_stream_yields_pieces_then_the_generation_without_a_thread_per_call(fake):
    m = fake()
    before = {t.name for t in threading.enumerate()}
    *pieces, g = list(m.stream("Hi", max_new_tokens=12, min_new_tokens=12))
    assert isinstance(g, llamalab.Generation) and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == g.text and g.new_tokens == 12
    assert m.engine.threads == [torch_thread.THREAD_NAME]
    assert not {t.name for t in threading.enumerate()} - before - {torch_thread.THREAD_NAME}


def test_closing_the_stream_early_ends_the_generation(fake):
    m = fake(delay=0.001)
    it = m.stream("Hi", **LONG)
    next(it)
    it.close()  # returns once the generation has ended
    assert not m._lock.locked() and not m._calls and m.engine.counts[-1] < 8000
    g = m.generate("Hi", max_new_tokens=4)
    assert g.finish_reason == "length" and g.new_tokens == 4


def test_stop_from_another_thread_ends_after_the_current_token(fake):
    """stop() from the engine's own thread (the torch thread, not the caller's) at the 5th token."""
    m = fake(hook=lambda n: n == 5 and m.stop())
    g = m.generate("Hi", **LONG)
    assert g.finish_reason == "stopped" and g.new_tokens == 5 and m.engine.counts == [5]


def test_stop_event_and_a_generation_from_a_worker_thread(fake):
    stop, out = threading.Event(), {}
    m = fake(hook=lambda n: n == 7 and stop.set())
    worker = threading.Thread(
        target=lambda: out.update(g=m.generate("Hi", stop_event=stop, **LONG))
    )
    worker.start()
    worker.join()
    assert out["g"].finish_reason == "stopped" and out["g"].new_tokens == 7
    assert m.engine.threads == [torch_thread.THREAD_NAME]


def test_concurrent_calls_stop_separately_and_together(fake):
    """A server takes concurrent calls (the engine declares Concurrent): they run at once, each with
    its own stop event, and the model's stop() reaches all of them."""
    m = fake("fake-remote", pieces=["x"] * 50)
    mine, started = threading.Event(), threading.Barrier(3)
    m.engine.delay = 0.001
    out = {}

    def call(key, **kw):
        started.wait()
        out[key] = m.generate("Hi", max_new_tokens=50, **kw)

    threads = [
        threading.Thread(target=call, args=("a",), kwargs={"stop_event": mine}),
        threading.Thread(target=call, args=("b",)),
    ]
    for t in threads:
        t.start()
    mine.set()
    started.wait()
    for t in threads:
        t.join()
    assert out["a"].finish_reason == "stopped" and out["b"].new_tokens == 50


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="needs the main thread"
)
def test_ctrl_c_while_waiting_stops_the_generation_then_raises(fake):
    """What a notebook's interrupt does: SIGINT to the main thread while it waits for the torch
    thread. The handler is Python's default, as in a kernel: a process started in the background by
    a shell inherits SIGINT ignored (measured: this test then saw no KeyboardInterrupt)."""
    main = threading.main_thread().ident
    m = fake(delay=0.001, hook=lambda n: n == 20 and signal.pthread_kill(main, signal.SIGINT))
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            m.generate("Hi", **LONG)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert not m._lock.locked() and not m._calls  # the generation had ended when it raised
    assert 20 <= m.engine.counts[-1] < 8000
    assert m.generate("Hi", max_new_tokens=3).new_tokens == 3


def test_prompt_too_long(fake):
    m = fake(context_length=16)
    with pytest.raises(PromptTooLong) as e:
        m.generate("word " * 20, max_new_tokens=4)
    assert e.value.limit == 16
    with pytest.raises(PromptTooLong):
        m.generate("Hi", max_new_tokens=16)


def test_callbacks_run_on_the_callers_thread_and_may_generate_again(fake):
    m, other = fake(), fake()
    inner, threads = [], []

    def nested(piece):
        threads.append(threading.current_thread().name)
        if not inner:
            inner.append(other.generate("Hi", max_new_tokens=2))
            inner.append(
                m.generate("Hi", max_new_tokens=3)
            )  # queued behind this generation: no deadlock

    result = {}
    t = threading.Thread(
        target=lambda: result.update(g=m.generate("Hi", max_new_tokens=5, on_text=nested)),
        name="caller",
    )
    t.start()
    t.join(5)
    assert not t.is_alive(), "deadlock"
    assert result["g"].new_tokens == 5 and [g.new_tokens for g in inner] == [2, 3]
    assert set(threads) == {"caller"}  # never on the torch thread


def test_an_inline_callback_generating_with_the_same_model_raises(fake):
    m = fake(uses_torch_thread=False)  # its own threads: generation and callbacks run in the caller
    with pytest.raises(LlamalabError, match="inside this model's own generation"):
        m.generate("Hi", max_new_tokens=5, on_text=lambda piece: m.generate("again"))
    assert m.generate("Hi", max_new_tokens=2).new_tokens == 2  # the lock was released


def test_an_engine_with_its_own_threads_runs_in_the_caller(fake):
    m = fake(uses_torch_thread=False)
    m.generate("Hi", max_new_tokens=3)
    *_, g = m.stream("Hi", max_new_tokens=3)
    assert (
        m.engine.threads == [threading.current_thread().name, "llamalab-stream"]
        and g.new_tokens == 3
    )


def test_remote_engine_generation_has_no_local_memory_figure(fake):
    m = fake("fake-remote")
    pieces = []
    g = m.generate(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        max_new_tokens=4,
        on_text=pieces.append,
    )
    assert g.text == "Paris is the capital" == "".join(pieces)
    assert g.peak_memory_bytes is None and g.peak_memory_kind == memory.REMOTE
    assert (
        g.new_tokens == 4 and g.prompt_tokens == (2 + 3) + (3 + 3) and g.finish_reason == "length"
    )
    assert m.weights_memory_bytes is None and m.load_memory_kind == memory.REMOTE
    assert (
        m.to_dict()["engine"] == "fake-remote"
        and m.estimate_error_pct is None
        and "remote" in repr(m)
    )
    from llamalab.measure.quality import log_probs

    with pytest.raises(LlamalabError, match="cannot give per-position logits"):
        log_probs(m, [1, 2, 3])
    with pytest.raises(LlamalabError):
        llamalab.perplexity(m)


def test_log_probs_come_from_the_engines_logits_on_the_torch_thread(fake):
    from llamalab.measure.quality import log_probs

    lp = log_probs(fake("fake-scoring"), [1, 2, 3])
    assert tuple(lp.shape) == (3, 16) and lp[0].argmax().item() == 2
    assert abs(lp.exp().sum(-1) - 1).max().item() < 1e-5


def test_unload_then_generate_says_so(fake):
    m = fake()
    m.unload()
    assert m.engine.unloaded and not m.is_loaded
    with pytest.raises(LlamalabError, match="unloaded"):
        m.generate("Hi")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(max_new_tokens=2.5), "max_new_tokens"),
        (dict(temperature=-1), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_p=0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_k=-1), "top_k"),
        (dict(max_new_tokens=4, min_new_tokens=5), "min_new_tokens"),
        (dict(seed="1"), "seed"),
        (dict(system=3), "system"),
        (dict(chat="yes"), "chat"),
        (dict(stop_event=True), "stop_event"),
        (dict(on_text="print"), "on_text"),
    ],
)
def test_bad_settings_name_the_argument(fake, kwargs, name):
    with pytest.raises(InvalidSetting) as e:
        fake().generate("Hi", **kwargs)
    assert name in e.value.message and e.value.fix


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "  ",
        None,
        3,
        [],
        [{"role": "robot", "content": "hi"}],
        [{"role": "user"}],
        [{"role": "user", "content": 3}],
        ["hi"],
        [{"role": "user", "content": "hi", "name": "x"}],
    ],
)
def test_bad_prompts_are_refused(fake, prompt):
    with pytest.raises(InvalidSetting) as e:
        fake().generate(prompt)
    assert "prompt" in e.value.message


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(force="yes"), "force"),
        (dict(trust_remote_code=1), "trust_remote_code"),
        (dict(context=0), "context"),
        (dict(device="gpu"), "device"),
        (dict(device="cpu:0"), "device"),
        (dict(device=None), "device"),
    ],
)
def test_load_checks_its_arguments(fake_backend, kwargs, name):
    with pytest.raises(InvalidSetting) as e:
        llamalab.load("default", "fake", **{"device": "cpu", **kwargs})
    assert name in str(e.value) or "device" in str(e.value)


def test_capabilities_and_schemes_include_the_registered_backend(fake_backend):
    table = llamalab.capabilities()
    row = table[(table.scheme == "fake") & (table.device == "cpu")].iloc[0]
    assert row.available and row.backend == "fake"
    cuda = table[(table.scheme == "fake") & (table.device == "cuda")].iloc[0]
    assert not cuda.available
    assert {"fake", "bf16"} <= set(llamalab.schemes().name)


def test_a_plugin_scheme_is_a_scheme_everywhere(fake_backend):
    """scheme(), schemes() and estimate() all see the schemes a registered backend brought."""
    assert llamalab.scheme("fake").rank == 90
    assert llamalab.estimate("default", "fake", context=64).breakdown["weights"] > 0
    assert "fake" in llamalab.catalog.scheme_names()


def test_a_backend_missing_the_contract_is_refused():
    class Half:
        REQUIRES = {}

        def load(self, *a, **k):
            pass

    with pytest.raises(InvalidSetting, match="available"):
        backends.register_backend("half", Half())


def test_every_builtin_backend_keeps_the_contract():
    for name in ("fp", "int8", "nf4", "gptq", "awq", "gguf"):
        mod = backends.module(name)
        assert isinstance(mod.REQUIRES, dict) and set(mod.REQUIRES) == {"cpu", "cuda"}, name
        ok, reason = mod.available("cpu")
        assert isinstance(ok, bool) and (ok or reason), name


def test_an_unknown_backend_says_which_exist():
    with pytest.raises(InvalidSetting, match="Known backends: .*fp"):
        backends.module("nope")


def test_a_plugin_backend_found_through_its_entry_point(tmp_path, monkeypatch):
    """A real distribution (dist-info with entry_points.txt) on sys.path,
    as `pip install a-plugin` leaves it."""
    dist = tmp_path / "llamalab_fake_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llamalab-fake-plugin\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""
        [llamalab.backends]
        fake-ep = fakes:EP_BACKEND
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "fake-ep" in backends.names()
        m = llamalab.load("default", "fake-ep", device="cpu")
        assert m.backend == "fake-ep" and m.generate("Hi", max_new_tokens=2).new_tokens == 2
        m.unload()
    finally:
        backends.unregister_backend("fake-ep")


def test_torch_thread_runs_inline_when_already_on_it_and_reraises():
    assert torch_thread.run(lambda: torch_thread.run(torch_thread.is_torch_thread)) is True
    assert not torch_thread.is_torch_thread()
    with pytest.raises(ZeroDivisionError):
        torch_thread.run(lambda: 1 / 0)
    assert torch_thread.run(lambda: threading.current_thread().name) == torch_thread.THREAD_NAME


def test_importing_llamalab_imports_no_torch_and_leaves_logging_alone():
    import subprocess

    code = (
        "import logging, sys, llamalab; assert 'torch' not in sys.modules; "
        "assert logging.getLogger('torchao').level == logging.NOTSET"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
