"""Adapters served as adapters, on the tiny Llama: two LoRA adapters trained to answer "A-…" and
"B-…", exported as GGUF adapters beside the base GGUF (llama.cpp's convert_lora_to_gguf.py) and
checked against the in-process base + peft adapter; one llama.cpp server loads both, switches
between them at run time, matches the in-process adapter, and gives the base's answers back
when they are off. Errors: an unknown name, an adapter for another base, a server without any."""

import pytest

import llamalab
from llamalab import finetune

pytestmark = [pytest.mark.slow, pytest.mark.server]

SETTINGS = dict(
    r=8,
    alpha=16,
    lr=2e-2,
    batch=4,
    max_length=64,
    warmup_steps=0,
    eval_every=0,
    schedule="constant",
    target_modules="all-linear",
    steps=8,
)
WORDS = ("red", "green", "blue", "cyan", "pink", "gold", "gray", "teal")
PROMPTS = [[{"role": "user", "content": f"Code for {w}?"}] for w in ("red", "teal")]


def rows(tag):
    return [
        [
            {"role": "user", "content": f"Code for {w}?"},
            {"role": "assistant", "content": f"{tag}-{w}"},
        ]
        for w in WORDS
    ]


@pytest.fixture(scope="module")
def exports(tiny_dir, tmp_path_factory):
    """{tag: Export} of two adapters trained on the tiny Llama; A's export is checked."""
    out = {}
    for tag in ("A", "B"):
        m = llamalab.load(str(tiny_dir), "fp32", device="cpu")
        try:
            run = finetune(m, rows(tag), output=tmp_path_factory.mktemp(tag), **SETTINGS).wait()
        finally:
            m.unload()
        out[tag] = llamalab.export_gguf(
            run.adapter_dir,
            "f16",
            check=tag == "A",
            source_scheme="fp32",
            prompts=PROMPTS,
            max_new_tokens=6,
            tokens=128,
            window=64,
            verbose=False,
        )
    return out


@pytest.fixture(scope="module")
def server(exports):
    pytest.importorskip(
        "xllamacpp", reason='the deploy extra is missing: pip install -e ".[deploy]"'
    )
    adapters = {tag: e.path for tag, e in exports.items()}
    with llamalab.serve(
        exports["A"].base, adapters=adapters, parallel=2, context=256, threads=1
    ) as s:
        yield s
    assert not s.alive


@pytest.fixture(scope="module")
def references(tiny_dir, exports):
    """(the in-process base, the in-process base + adapter A)."""
    base = llamalab.load(str(tiny_dir), "fp32", device="cpu")
    with_a = llamalab.load(str(tiny_dir), "fp32", device="cpu", adapter=exports["A"].source)
    yield base, with_a
    base.unload()
    with_a.unload()


def test_adapter_exports_beside_its_base_and_agrees_in_process(exports):
    a = exports["A"]
    assert a.path.parent == a.base.parent and a.path.name.startswith(a.base.name[: -len(".gguf")])
    assert a.path.stat().st_size < a.base.stat().st_size / 4  # the adapter, not a merged model
    c = a.check
    assert c.passed, c.to_dict()
    assert c.top1_agreement >= 0.9 and c.kl_mean <= c.kl_tolerance and c.tokens > 100
    assert c.greedy_identical == 1.0, c.answers
    assert all(x["gguf"].startswith("A-") for x in c.answers)  # the adapter is really applied


def test_two_adapters_switch_at_run_time(server):
    listed = server.adapters()
    assert [(x["name"], x["scale"]) for x in listed] == [("A", 0.0), ("B", 0.0)]
    served = server.connect()

    def answer():
        return served.generate(PROMPTS[0], max_new_tokens=4).text

    base_answer = answer()
    server.use_adapter("A")
    assert answer().startswith("A-")
    server.use_adapter("B", scale=1.0)
    assert answer().startswith("B-")
    assert [x["scale"] for x in server.adapters()] == [0.0, 1.0]
    server.use_adapter(None)
    assert answer() == base_answer and not base_answer.startswith(("A-", "B-"))


def test_each_connection_carries_its_own_adapter_per_request(server):
    """server.connect(adapter=...) adds llama.cpp's per-request `lora` field to every request:
    two connections answer with two adapters at once, whatever use_adapter() set."""
    server.use_adapter("B")
    a, b, base = server.connect(adapter="A"), server.connect(adapter="B"), server.connect()
    assert a is server.connect(adapter="A") and a.adapter == "A" and base.adapter == ""
    assert a.generate(PROMPTS[0], max_new_tokens=4).text.startswith("A-")
    assert b.generate(PROMPTS[1], max_new_tokens=4).text.startswith("B-")
    assert base.generate(PROMPTS[0], max_new_tokens=4).text.startswith("B-")  # the global choice
    assert [x["scale"] for x in server.adapters()] == [0.0, 1.0]  # requests changed nothing
    server.use_adapter(None)
    assert a.generate(PROMPTS[1], max_new_tokens=4).text.startswith("A-")
    with pytest.raises(llamalab.LlamalabError, match="no adapter 'C'"):
        server.connect(adapter="C")


def test_no_answer_is_served_from_a_cache_another_adapter_filled(server):
    """This llama.cpp build reuses a slot's cached prompt computed with adapter A for a later
    request without `lora` (the embedded model's base answered in an adapter's format): the
    kit's clients of a server with adapters send cache_prompt false, so the base stays the base."""
    a, base = server.connect(adapter="A"), server.connect()
    assert base.engine.extra_body == {"cache_prompt": False}
    fresh = [base.generate(p, max_new_tokens=4).text for p in PROMPTS]
    for p, want in zip(PROMPTS, fresh, strict=True):
        assert a.generate(p, max_new_tokens=4).text.startswith("A-")
        assert base.generate(p, max_new_tokens=4).text == want


def test_served_adapter_matches_in_process_and_off_restores_the_base(server, references, exports):
    base, with_a = references
    server.use_adapter("B")  # the check uses the per-request field: the global setting stays
    report = server.check_adapter(
        "A",
        with_a,
        base=base,
        prompts=PROMPTS,
        max_new_tokens=8,
        base_kl=exports["A"].check.base_kl_mean,
    )
    assert report.passed, str(report)
    assert report.adapter.top1_agreement >= 0.9 and report.adapter.positions >= 8
    assert report.adapter.kl_mean <= report.kl_tolerance
    assert report.base is not None and report.base.top1_agreement >= 0.9
    assert [x["scale"] for x in server.adapters()] == [0.0, 1.0]
    server.use_adapter(None)


def test_without_adapters_is_the_base_on_the_same_weights(references):
    """m.without_adapters(): the adapter switched off on the same weights (peft's
    disable_adapter) answers and scores as the plain base; the inspector finds where the adapter
    parts from it; unloading the view leaves the model and its adapter in place."""
    import numpy as np

    base, with_a = references
    off = with_a.without_adapters()
    assert off.engine.model is with_a.engine.model  # no second copy
    ids = base.engine.encode(PROMPTS[0])
    assert np.allclose(off.engine.logits(ids), base.engine.logits(ids), atol=1e-5)
    assert (
        off.generate(PROMPTS[0], max_new_tokens=4).text
        == base.generate(PROMPTS[0], max_new_tokens=4).text
    )
    view = llamalab.inspect_tokens(with_a, PROMPTS[0], against=off, max_new_tokens=4)
    assert view.answer.startswith("A-") and view.first_parting == 0 and view.kl_mean > 0.1
    assert "adapters off" in view.other
    off.unload()
    assert with_a.generate(PROMPTS[0], max_new_tokens=4).text.startswith("A-")
    with pytest.raises(llamalab.LlamalabError, match="no adapters"):
        base.without_adapters()


def test_unloading_the_model_lets_its_adapters_off_handle_go(tiny_dir, exports):
    m = llamalab.load(str(tiny_dir), "fp32", device="cpu", adapter=exports["A"].source)
    off = m.without_adapters()
    m.unload()  # a handle that kept its own reference kept the weights in memory
    assert off.engine.model is None and off.engine.peft_model is None


def test_adapter_check_fails_against_the_wrong_reference(server, references):
    base, _ = references
    report = server.check_adapter("A", base, prompts=PROMPTS, max_new_tokens=8)
    assert not report.passed and report.adapter.top1_agreement < 0.9


def test_unknown_adapter_name_is_refused_with_the_names(server):
    with pytest.raises(llamalab.LlamalabError, match="(?s)no adapter 'C'.*'A', 'B'"):
        server.use_adapter("C")
    with pytest.raises(llamalab.LlamalabError, match="no adapter 'C'"):
        server.lora("C")
    assert [x["scale"] for x in server.adapters()] == [0.0, 0.0]  # nothing changed


def test_adapter_for_another_base_is_refused_naming_both(exports):
    from llamalab.runtime.files import embedded

    other = embedded.gguf_path()  # SmolLM2-135M: hidden 576, not the tiny Llama's 64
    with pytest.raises(llamalab.LlamalabError) as e:
        llamalab.serve(other, adapters={"A": exports["A"].path})
    msg = str(e.value)
    assert exports["A"].path.name in msg and other.name in msg and "576" in msg
    with pytest.raises(llamalab.LlamalabError, match="does not fit"):
        llamalab.load(str(other), "gguf", device="cpu", adapter=str(exports["A"].path))
    with pytest.raises(llamalab.LlamalabError, match="not a LoRA adapter"):
        llamalab.serve(exports["A"].base, adapters={"A": exports["A"].base})


def test_server_without_adapters_says_how_to_start_one(exports):
    with llamalab.serve(exports["A"].base, parallel=1, context=128, threads=1) as s:
        with pytest.raises(llamalab.LlamalabError, match="without adapters") as e:
            s.use_adapter("A")
        assert "adapters=" in e.value.fix
