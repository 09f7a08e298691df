"""What cannot train here says why and where it can, before any model loads (fast)."""

import pytest

from llamalab import finetune
from llamalab import training_capabilities as table
from llamalab.core.errors import NotEnoughMemory, SchemeUnavailable

ROWS = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]] * 8


def test_gguf_base_cannot_train_and_says_why():
    with pytest.raises(SchemeUnavailable, match="GGUF") as e:
        finetune("default", ROWS, method="lora", scheme="q4_k_m", device="cpu")
    assert "export" in str(e.value)
    with pytest.raises(SchemeUnavailable, match="qlora training over fp32"):
        finetune("default", ROWS, method="qlora", scheme="fp32", device="cpu")


def test_full_refused_when_the_estimate_does_not_fit():
    with pytest.raises(NotEnoughMemory, match="optimizer") as e:
        finetune("default", ROWS, method="full", device="cpu", memory_budget=1_000_000_000)
    assert "lora" in str(e.value)


def test_capability_table_is_data_with_reasons():
    t = table()
    assert set(t.method) == {"lora", "dora", "qlora", "full"}
    cpu = t[(t.device == "cpu")].set_index(["method", "scheme"])
    assert cpu.loc[("qlora", "nf4"), "available"] and cpu.loc[("lora", "gptq-4bit"), "available"]
    assert "merg" in cpu.loc[("lora", "gptq-4bit"), "reason"]


def test_compare_reports_a_refusal_as_a_row():
    from llamalab import finetune_compare

    df = finetune_compare(variants=["full"], memory_budget=1_000_000_000)
    assert df.loc[0, "status"] == "refused" and "does not fit" in df.loc[0, "reason"]


def test_settings_carry_help_and_reject_unknown_names():
    from llamalab import FinetuneSettings
    from llamalab.core.errors import InvalidSetting
    from llamalab.core.settings import help_of

    assert "q_proj and v_proj" in help_of(FinetuneSettings, "target_modules")
    with pytest.raises(InvalidSetting, match="Did you mean lr"):
        finetune("default", ROWS, lrr=0.1)
    with pytest.raises(InvalidSetting, match="batch"):
        finetune("default", ROWS, batch=0)


def test_runtime_capabilities_say_what_trains_where():
    from llamalab import capabilities

    t = capabilities().set_index(["scheme", "device"])
    assert set(t.loc[("fp32", "cpu"), "trains"].split(", ")) == {"lora", "dora", "full"}
    assert t.loc[("fp32", "cpu"), "trains_reason"] == ""
    assert (
        t.loc[("q4_k_m", "cpu"), "trains"] == ""
        and "GGUF" in t.loc[("q4_k_m", "cpu"), "trains_reason"]
    )
    nf4 = t.loc[("nf4", "cpu")]
    assert (
        nf4["trains"] == "qlora"
        if nf4["available"]
        else nf4["trains_reason"].startswith("the scheme does not")
    )
    for (_, _), row in t[
        ~t.available
    ].iterrows():  # what cannot run here cannot train here, and says why
        assert row["trains"] == "" and row["reason"] in row["trains_reason"]


def test_resume_needs_a_stopped_runs_checkpoint(tmp_path):
    from llamalab.core.errors import InvalidSetting

    with pytest.raises(InvalidSetting, match="no stopped run's checkpoint") as e:
        finetune("default", ROWS, resume=tmp_path)
    assert "run.output_dir" in e.value.fix
