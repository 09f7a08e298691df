"""Fast checks (no model loads): bad settings say which setting and what to use instead."""

import importlib.util

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llamalab
from llamalab.core import settings
from llamalab.core.errors import BackendMissing, InvalidSetting
from llamalab.core.settings import with_changes
from llamalab.measure.quality import windows
from llamalab.quantization import (
    QuantizeSettings,
    _check_group_size,
    _scheme,
    awq,
    cache,
    default_group_size,
    gptq,
)

SMOL = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "attention output (heads × head_dim)": 576,
    "kv projection (kv_heads × head_dim)": 192,
}


def test_bits_3_is_refused_with_the_supported_widths():
    with pytest.raises(InvalidSetting, match=r"bits=3.*GPTQ") as e:
        _scheme("gptq", 3)
    assert "(4, 8)" in e.value.fix


def test_awq_is_4bit_only():
    with pytest.raises(InvalidSetting, match="bits=8"):
        _scheme("awq", 8)


def test_explicit_scheme_bits_conflict():
    with pytest.raises(InvalidSetting, match="8-bit but bits=4"):
        _scheme("gptq-8bit", 4)
    assert _scheme("gptq", 8)[0].name == "gptq-8bit"


def test_group_size_not_dividing_hidden_names_the_dimension_and_a_fix():
    with pytest.raises(InvalidSetting) as e:
        _check_group_size(128, SMOL, gptq)
    assert "hidden_size = 576" in e.value.message and "group_size=64" in e.value.fix


def test_group_size_must_be_power_of_two():
    with pytest.raises(InvalidSetting, match="power of two"):
        _check_group_size(48, SMOL, gptq)


def test_default_group_size_follows_the_shapes():
    assert default_group_size(SMOL) == 64
    assert (
        default_group_size(
            {
                **SMOL,
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "attention output (heads × head_dim)": 4096,
            }
        )
        == 128
    )


def test_awq_needs_output_sizes_divisible_by_64():
    with pytest.raises(InvalidSetting, match="AWQ"):
        _check_group_size(32, {**SMOL, "kv projection (kv_heads × head_dim)": 96}, awq)


def test_quantize_refuses_non_calibrated_schemes():
    with pytest.raises(InvalidSetting, match="GPTQ or AWQ"):
        llamalab.quantize("default", "nf4")


def test_unknown_option_is_named(embedded_dir):
    with pytest.raises(InvalidSetting, match="bogus"):
        llamalab.quantize("default", "gptq", bogus=1)
    with pytest.raises(InvalidSetting, match="Did you mean group_size"):
        llamalab.quantize("default", "gptq", groupsize=64)


def test_an_option_of_the_other_method_is_refused(embedded_dir):
    with pytest.raises(InvalidSetting, match="desc_act=True is not an option of AWQ") as e:
        llamalab.quantize("default", "awq", desc_act=True)
    assert "scale_search_chunked_activations" in e.value.fix


@pytest.mark.parametrize(
    "bad",
    [
        {"samples": 0},
        {"seq_len": 8},
        {"batch_size": 1.5},
        {"bits": "4"},
        {"desc_act": "yes"},
        {"damp_percent": 2.0},
        {"device": "gpu"},
        {"group_size": -2},
        {"hugepages": None},
    ],
)
def test_bad_settings_name_the_argument(bad):
    name = next(iter(bad))
    with pytest.raises(InvalidSetting, match=name):
        QuantizeSettings(**bad)
    with pytest.raises(InvalidSetting, match=name):
        llamalab.quantize("default", "gptq", **bad)


def test_settings_object_and_keywords_combine():
    s = QuantizeSettings(bits=8, samples=4)
    assert with_changes(s, samples=2) == QuantizeSettings(bits=8, samples=2)
    assert s.options("gptq") == {} and QuantizeSettings(desc_act=True, sym=False).options(
        "gptq"
    ) == {"desc_act": True, "sym": False}


def test_quantize_help_lists_every_setting_with_its_words():
    for name in settings.names(QuantizeSettings):
        assert f"{name} = " in llamalab.quantize.__doc__
    assert settings.help_of(QuantizeSettings, "group_size") in " ".join(
        llamalab.quantize.__doc__.split()
    )


def test_missing_gptqmodel_gives_the_install_command(monkeypatch, embedded_dir):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gptqmodel" else real(name, *a),
    )
    with pytest.raises(BackendMissing) as e:
        llamalab.quantize("default", "gptq", force=True)
    assert 'pip install "llamalab[quant]"' in e.value.fix
    from llamalab.runtime.backends import gptq as backend

    ok, reason = backend.available("cpu")
    assert not ok and "gptqmodel" in reason


def test_cache_key_changes_with_settings_and_versions():
    s = cache.Settings("gptq-4bit", "gptq", 4, 64, 32, 256, "t", "abc")
    v = {"gptqmodel": "7.6.0"}
    assert cache.key("m", s, v) == cache.key("m", s, v)
    assert cache.key("m", s, v) != cache.key("m", s, {"gptqmodel": "7.7.0"})
    assert cache.key("m", s, v) != cache.key(
        "m", cache.Settings("gptq-4bit", "gptq", 4, 32, 32, 256, "t", "abc"), v
    )
    assert cache.key("m", s, v) != cache.key("other", s, v)


def test_capability_table_has_a_reason_for_every_unavailable_cell():
    t = llamalab.capabilities()
    assert set(t[t.scheme.isin(["gptq-4bit", "awq-4bit", "nf4", "q4_1"])].backend) == {
        "gptq",
        "awq",
        "nf4",
        "gguf",
    }
    missing = t[~t.available]
    assert (missing.reason.str.len() > 0).all()


@given(n=st.integers(2, 3000), context=st.integers(2, 600), frac=st.floats(0.01, 1.0))
def test_windows_score_every_target_exactly_once(n, context, frac):
    stride = max(1, int(context * frac))
    scored = []
    for w in windows(n, context, stride):
        end = min(w.start + context, n)
        assert 1 <= w.first_target < end - w.start + 1
        scored += range(w.start + w.first_target, end)
    assert scored == list(range(1, n))


def test_bad_windows_are_refused():
    with pytest.raises(InvalidSetting):
        windows(100, 64, 128)
