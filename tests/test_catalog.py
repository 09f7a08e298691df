import json

import pytest

import llamalab
from llamalab.catalog import GPU, card, count_params, gpu, gpus, models, scheme, schemes
from llamalab.runtime.files import embedded

REQUIRED = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "mistral-7b",
    "mistral-small",
    "mistral-large",
    "ministral-8b",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "codellama-7b",
    "codellama-34b",
    "deepseek-coder-6.7b",
    "deepseek-coder-33b",
    "phi-3-mini",
    "phi-3-medium",
    "qwen2.5-0.5b",
    "qwen2.5-1.5b",
    "qwen2.5-7b",
    "qwen2.5-72b",
    "yi-1.5-9b",
    "yi-1.5-34b",
    "falcon-7b",
    "falcon-40b",
    "falcon-180b",
    "gemma-2-2b",
    "gemma-2-9b",
    "gemma-2-27b",
    "smollm2-135m",
    "smollm2-1.7b",
]


def test_catalog_has_the_required_models_with_provenance():
    df = llamalab.models()
    assert len(df) >= 25
    assert set(REQUIRED) <= set(df["name"])
    assert (df["source"].str.len() > 10).all(), "every entry names its source"
    assert (df["license"].str.len() > 0).all() and (df["best_at"].str.len() > 0).all()


@pytest.mark.parametrize("name", REQUIRED)
def test_params_agree_with_architecture(name):
    c = card(name)
    assert count_params(c) == pytest.approx(c.params, rel=0.03)
    assert count_params(c, active=True) == pytest.approx(c.active_params, rel=0.03)
    assert c.heads % c.kv_heads == 0


def test_short_names_instruct_names_and_hub_ids():
    assert card("llama-3.1-70b-instruct").variant == "instruct"
    assert card("llama-3.1-70b-instruct").repo == "meta-llama/Llama-3.1-70B-Instruct"
    assert card("meta-llama/Llama-3.1-8B-Instruct").name == "llama-3.1-8b"
    assert card("Mixtral-8x22B").name == "mixtral-8x22b"
    assert card("default").name == card("smollm2-135m-instruct").name == "smollm2-135m"
    assert "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4" in card("llama-3.1-8b").awq
    assert "Qwen/Qwen2.5-0.5B-Instruct-GPTQ-Int4" in card("qwen2.5-0.5b").gptq


def test_embedded_model_shapes_match_the_design():
    c = card("default")
    assert (c.hidden, c.intermediate, c.layers, c.heads, c.kv_heads, c.vocab) == (
        576,
        1536,
        30,
        9,
        3,
        49152,
    )
    assert c.tied_embeddings and c.license.startswith("Apache")


def test_every_licence_names_where_it_was_checked():
    df = llamalab.models()
    assert (df["license"].str.len() > 0).all()
    source = df["license_source"]
    checked = source.str.startswith("https://") | (source == "unverified")
    assert checked.all(), f"no licence source: {list(df.name[~checked])}"
    assert df["open_weights"].all(), "the catalog holds open-weight models only"


def test_open_source_means_an_osi_licence_and_nothing_else():
    from llamalab.catalog import osi_licenses

    df = llamalab.models()
    assert set(osi_licenses()) <= {"Apache-2.0", "MIT", "BSD-3-Clause"}, "a small, fixed list"
    assert (df["open_source"] == df["license"].isin(osi_licenses())).all()
    assert not card("llama-3.1-8b").open_source and not card("gemma-2-9b").open_source
    assert card("mixtral-8x7b").open_source and card("phi-3-mini").open_source


def test_the_landscape_columns_a_learner_queries():
    df = llamalab.models().set_index("name")
    for column in ("family", "params_b", "active_params_b", "moe", "context", "license"):
        assert column in df.columns
    assert df.loc["mixtral-8x7b", "moe"] and not df.loc["llama-3.1-8b", "moe"]
    assert df.loc["mixtral-8x7b", "active_params_b"] < df.loc["mixtral-8x7b", "params_b"] / 3
    dense = df[~df.moe]
    assert (dense.params_b == dense.active_params_b).all()


def test_moe_cards_know_active_params():
    c = card("mixtral-8x7b")
    assert c.is_moe and c.experts == 8 and c.experts_active == 2
    assert 12e9 < c.active_params < 14e9 < 46e9 < c.params < 48e9


def test_unknown_model_suggests_close_matches():
    with pytest.raises(llamalab.UnknownModel) as e:
        card("lama-3.1-8b")
    assert "llama-3.1-8b" in e.value.matches and "llama-3.1-8b" in str(e.value)


def test_local_folder_card_counts_params_from_config(embedded_dir):
    c = card(str(embedded_dir))
    assert c.local_path and c.hidden == 576 and c.chat
    assert c.params == pytest.approx(card("smollm2-135m").params, rel=0.001)


def test_hardware_table_reads_as_the_driver_does():
    """Capacities are nvidia-smi's Total in MiB, not the marketing GB."""
    for name, mib in [
        ("rtx-4090", 24564),
        ("a10", 23028),
        ("l4", 23034),
        ("a100-40gb", 40960),
        ("a100-80gb", 81920),
        ("h100-80gb", 81559),
        ("h200", 143771),
    ]:
        g = gpu(name)
        assert g.memory_bytes == mib * 2**20 and g.memory_mib == mib
        assert g.bandwidth_bytes_s > 1e11 and f"{mib}MiB" in g.memory_source.replace(" MiB", "MiB")
    with pytest.raises(llamalab.UnknownHardware):
        gpu("h1000")


def test_schemes_aliases_and_unknown():
    assert scheme("gptq").name == "gptq-4bit" and scheme("awq").name == "awq-4bit"
    assert scheme("gguf-q4_k_m").name == "q4_k_m"
    with pytest.raises(llamalab.UnknownScheme) as e:
        scheme("bf61")
    assert "bf16" in e.value.matches
    with pytest.raises(llamalab.UnknownScheme) as e:
        scheme("ggfu")
    assert "gguf" in e.value.matches
    for short in ("gptq", "awq", "gguf"):  # the error lists the short names and what they mean
        assert f"{short} = " in e.value.fix
    assert list(schemes().name[:2]) == ["fp32", "bf16"] and all(
        isinstance(scheme(n), llamalab.Scheme) for n in schemes().name
    )


def test_gguf_means_the_models_own_gguf_type():
    assert scheme("gguf", "default").name == "q4_1" == card("default").gguf_type
    assert llamalab.estimate("default", "gguf", 1024).scheme == "q4_1"
    with pytest.raises(llamalab.InvalidSetting, match="own GGUF file") as e:
        scheme("gguf", "llama-3.1-8b")  # a catalog model with no GGUF file of its own
    assert "q8_0" in e.value.fix
    with pytest.raises(llamalab.InvalidSetting, match="no model was given"):
        scheme("gguf")


def test_the_embedded_gguf_is_the_type_the_catalog_says():
    pytest.importorskip("gguf")
    c = card(str(embedded.gguf_path()))  # read from the file's own metadata
    assert c.gguf_type == card("default").gguf_type == "q4_1"
    assert scheme("gguf", c).name == "q4_1"


@pytest.mark.parametrize("bad", [None, 3, 2.5, ["llama-3.1-8b"], b"llama", ""])
def test_lookups_refuse_what_is_not_a_name(bad):
    for lookup in (card, scheme, gpu):
        with pytest.raises(llamalab.LlamalabError) as e:
            lookup(bad)
        assert e.value.fix


def test_a_folder_without_a_usable_config_is_a_kit_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(llamalab.InvalidSetting, match="config.json"):
        card(str(tmp_path))
    (tmp_path / "broken.gguf").write_bytes(b"not a gguf")
    pytest.importorskip("gguf")
    with pytest.raises(llamalab.InvalidSetting, match="GGUF"):
        card(str(tmp_path / "broken.gguf"))


def test_listings_are_dataframes_and_lookups_are_typed():
    for listing, lookup, kind in (
        (gpus, gpu, GPU),
        (schemes, scheme, llamalab.Scheme),
        (models, card, llamalab.ModelCard),
    ):
        df = listing()
        assert len(df) > 5 and "name" in df.columns
        assert all(isinstance(lookup(n), kind) for n in df.name)
    assert gpu("NVIDIA H100 80GB (SXM5)") is gpu("h100-80gb")


def test_this_machine_says_whether_its_cpu_has_bf16_instructions(monkeypatch):
    from llamalab.core import hardware as hw

    monkeypatch.setattr(hw, "cpu_flags", lambda: {"avx2", "fma"})
    plain = llamalab.hardware()
    monkeypatch.setattr(hw, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    native = llamalab.hardware()
    assert (plain.cpu_bf16, native.cpu_bf16) == (False, True)
    assert "fp32 is faster" in str(plain) and "bf16 instructions" in str(native)
    flags = hw.cpu_flags()
    assert ("avx512_bf16" in flags or "amx_bf16" in flags) == hw.hardware().cpu_bf16
