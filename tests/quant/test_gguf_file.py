"""A bare .gguf file is a model: its card comes from the GGUF metadata,
its scheme from its weight type."""

import shutil

import pytest

import llamalab
from llamalab.runtime.files import embedded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    return shutil.copy(embedded.gguf_path(), tmp_path_factory.mktemp("gguf") / "smol.gguf")


def test_card_from_metadata_matches_the_catalog(gguf_file):
    c, known = llamalab.card(str(gguf_file)), llamalab.card("smollm2-135m")
    shape = (
        "layers",
        "hidden",
        "intermediate",
        "heads",
        "kv_heads",
        "head_dim",
        "vocab",
        "tied_embeddings",
    )
    assert {k: getattr(c, k) for k in shape} == {k: getattr(known, k) for k in shape}
    assert abs(c.params / known.params - 1) < 0.01 and c.chat and c.name == "smol"


def test_wrong_scheme_names_the_right_one(gguf_file):
    with pytest.raises(llamalab.InvalidSetting, match="GGUF file") as e:
        llamalab.load(str(gguf_file))  # bf16 by default
    assert "q4_1" in e.value.fix


def test_loads_answers_and_matches_its_estimate(gguf_file):
    m = llamalab.load(str(gguf_file), "q4_1")
    try:
        assert (
            "Paris"
            in m.generate(
                "What is the capital of France? Answer in one sentence.", max_new_tokens=24
            ).text
        )
        assert abs(m.estimate_error_pct) < 2, m.to_dict()
    finally:
        m.unload()
