"""Property tests at the runtime's public boundaries (load, generate, stream): valid settings always
give a valid result, and a setting broken with an arbitrary value gives either a result or one of
the kit's errors, never a raw TypeError/ValueError. Most examples are fully valid by construction
(one field at most is broken, in about a third of them), so the valid branch is what is mostly
exercised. Fake engine: fast."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llamalab
from llamalab import LlamalabError

ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
)
TEXT = st.text(min_size=1, max_size=40).filter(str.strip)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=20)}
)
PROMPT = st.one_of(TEXT, st.lists(MESSAGE, min_size=1, max_size=3))
BAD_PROMPT = st.one_of(
    ANY,
    st.lists(
        st.dictionaries(st.sampled_from(["role", "content", "name"]), ANY, max_size=3), max_size=3
    ),
)
SAMPLING = st.integers(1, 64).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "max_new_tokens": st.just(n),
            "min_new_tokens": st.integers(0, n),
            "temperature": st.floats(0, 2),
            "top_p": st.floats(0.01, 1),
            "top_k": st.integers(0, 50),
            "seed": st.one_of(st.none(), st.integers(0, 2**32 - 1)),
            "system": st.one_of(st.none(), st.text(max_size=10)),
            "chat": st.one_of(st.none(), st.booleans()),
        }
    )
)
FIELDS = [
    "max_new_tokens",
    "min_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "system",
    "chat",
    "prompt",
]
BROKEN = st.sampled_from(
    [None] * 2 * len(FIELDS) + FIELDS
)  # None: every setting valid (two thirds of examples)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def model(fake_backend):
    m = llamalab.load("default", "fake", device="cpu")
    yield m
    m.unload()


def _valid(g, max_new_tokens) -> None:
    assert isinstance(g, llamalab.Generation)
    assert 1 <= g.new_tokens <= max_new_tokens and g.finish_reason in ("stop", "length")
    assert isinstance(g.text, str) and g.total_s >= 0 and not math.isnan(g.total_s)


def _arguments(data, broken):
    kwargs = data.draw(SAMPLING)
    prompt = data.draw(PROMPT)
    if broken == "prompt":
        prompt = data.draw(BAD_PROMPT)
    elif broken is not None:
        kwargs[broken] = data.draw(ANY)
    return prompt, kwargs


@SETTINGS
@given(data=st.data(), broken=BROKEN)
def test_generate_gives_a_generation_and_bad_input_a_kit_error(model, data, broken):
    prompt, kwargs = _arguments(data, broken)
    if broken is None:  # every setting valid: it must work
        _valid(model.generate(prompt, **kwargs), kwargs["max_new_tokens"])
        return
    try:
        g = model.generate(prompt, **kwargs)
    except LlamalabError as e:
        assert e.message and e.fix
        return
    _valid(g, kwargs["max_new_tokens"])


@SETTINGS
@given(data=st.data(), broken=BROKEN)
def test_stream_gives_pieces_and_a_generation_and_bad_input_a_kit_error(model, data, broken):
    prompt, kwargs = _arguments(data, broken)
    try:
        *pieces, g = list(model.stream(prompt, **kwargs))
    except LlamalabError:
        assert broken is not None, "valid settings must stream"
        return
    _valid(g, kwargs["max_new_tokens"])
    assert "".join(pieces) == g.text


@settings(max_examples=40, deadline=None)
@given(
    model=st.one_of(st.sampled_from(["default", "nope"]), ANY),
    device=st.one_of(st.sampled_from(["cpu", "auto"]), ANY),
    force=ANY,
    trust_remote_code=ANY,
    context=st.one_of(st.integers(-5, 10**7), ANY),
)
def test_load_gives_a_model_or_a_kit_error(
    fake_backend, model, device, force, trust_remote_code, context
):
    try:
        m = llamalab.load(
            model,
            "fake",
            device=device,
            force=force,
            trust_remote_code=trust_remote_code,
            context=context,
        )
    except LlamalabError:
        return
    assert isinstance(m, llamalab.LoadedModel) and m.engine.name == "fake"
    m.unload()


def test_valid_settings_always_load(fake_backend):
    m = llamalab.load(
        "default", "fake", device="cpu", force=False, trust_remote_code=False, context=512
    )
    assert m.generate("Hi", max_new_tokens=3).new_tokens == 3
    m.unload()
