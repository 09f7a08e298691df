"""Property tests: arbitrary values at the runtime's public boundaries (load, generate, stream) give
either a valid result or one of the kit's errors, never a raw TypeError/ValueError. Fake engine: fast."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llamalab
from llamalab.core.errors import LlamalabError

ANY = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=6), st.lists(st.integers(), max_size=2))
MESSAGE = st.dictionaries(st.sampled_from(["role", "content", "name"]),
                          st.one_of(st.sampled_from(["system", "user", "assistant", "robot"]), st.text(max_size=20),
                                    st.integers()), max_size=3)
PROMPT = st.one_of(st.text(max_size=40), st.lists(MESSAGE, max_size=3), ANY)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model(fake_backend):
    m = llamalab.load("default", "fake", device="cpu")
    yield m
    m.unload()


def _valid(g, max_new_tokens) -> None:
    assert isinstance(g, llamalab.Generation)
    assert 1 <= g.new_tokens <= max_new_tokens and g.finish_reason in ("stop", "length")
    assert isinstance(g.text, str) and g.total_s >= 0 and not math.isnan(g.total_s)


@SETTINGS
@given(prompt=PROMPT, max_new_tokens=st.one_of(st.integers(-3, 400), ANY), temperature=ANY, top_p=ANY,
       top_k=st.one_of(st.integers(-3, 50), ANY), min_new_tokens=st.one_of(st.integers(-3, 400), ANY),
       seed=ANY, system=st.one_of(st.none(), st.text(max_size=10), ANY), chat=ANY)
def test_generate_gives_a_generation_or_a_kit_error(model, prompt, max_new_tokens, temperature, top_p, top_k,
                                                    min_new_tokens, seed, system, chat):
    try:
        g = model.generate(prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                           min_new_tokens=min_new_tokens, seed=seed, system=system, chat=chat)
    except LlamalabError:
        return
    _valid(g, max_new_tokens)


@SETTINGS
@given(prompt=PROMPT, max_new_tokens=st.one_of(st.integers(-3, 400), ANY))
def test_stream_gives_pieces_and_a_generation_or_a_kit_error(model, prompt, max_new_tokens):
    try:
        *pieces, g = list(model.stream(prompt, max_new_tokens=max_new_tokens))
    except LlamalabError:
        return
    _valid(g, max_new_tokens)
    assert "".join(pieces) == g.text


@settings(max_examples=40, deadline=None)
@given(model=st.one_of(st.sampled_from(["default", "nope"]), ANY), device=st.one_of(st.sampled_from(["cpu", "auto"]), ANY),
       force=ANY, trust_remote_code=ANY, context=st.one_of(st.integers(-5, 10**7), ANY))
def test_load_gives_a_model_or_a_kit_error(fake_backend, model, device, force, trust_remote_code, context):
    try:
        m = llamalab.load(model, "fake", device=device, force=force, trust_remote_code=trust_remote_code,
                          context=context)
    except LlamalabError:
        return
    assert isinstance(m, llamalab.LoadedModel) and m.engine.name == "fake"
    m.unload()
