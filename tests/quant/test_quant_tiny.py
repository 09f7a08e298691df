"""Quantize the tiny Llama through the kit (GPTQ 4/8-bit, AWQ 4-bit on CPU) and load it back."""

import json
import shutil
import time
from pathlib import Path

import pytest

import llamalab
from llamalab.core.errors import InvalidSetting

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fp32(tiny_llama):
    m = llamalab.load(str(tiny_llama), "fp32", device="cpu")
    yield m
    m.unload()


def test_checkpoints_are_smaller_and_say_what_they_are(tiny_quantized, tiny_llama):
    bf16_bytes = sum(f.stat().st_size for f in tiny_llama.glob("*.safetensors"))
    for name, q in tiny_quantized.items():
        cfg = json.loads(open(q.path + "/config.json").read())["quantization_config"]
        assert cfg["quant_method"] == name.split("-")[0] and cfg["bits"] == q.settings["bits"]
        assert cfg["group_size"] == 128  # 256 and 768 are multiples of 128: the default group size
        assert q.quantize_seconds > 0 and not q.cached
        # gptqmodel's run logs travel with the checkpoint instead of landing in the user's ./logs
        assert any((Path(q.path) / "gptqmodel-logs").glob(f"{name.split('-')[0]}_log_*.log"))
    # the tied embedding stays 16-bit, so the linears' saving shows only partly in the file
    assert (
        tiny_quantized["gptq-4bit"].size_bytes()
        < tiny_quantized["gptq-8bit"].size_bytes()
        < bf16_bytes
    )


def test_second_call_is_cached_and_instant(tiny_quantized, tiny_llama):
    t0 = time.perf_counter()
    again = llamalab.quantize(
        str(tiny_llama), "gptq", bits=4, samples=8, seq_len=64, progress=False
    )
    assert again.cached and again.path == tiny_quantized["gptq-4bit"].path
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("name", ["gptq-4bit", "gptq-8bit", "awq-4bit"])
def test_load_generate_and_measure(tiny_quantized, fp32, name):
    m = tiny_quantized[name].load()
    try:
        assert m.scheme.name == name and m.backend == name.split("-")[0]
        g = m.generate("In the beginning", max_new_tokens=8, min_new_tokens=8, chat=False)
        assert g.new_tokens == 8 and g.decode_tokens_per_s > 0
        ppl = llamalab.perplexity(m, tokens=256, window=128)
        assert ppl.value > 1 and ppl.tokens == 255 and ppl.text == "kjv-luke-1-4"
        d = llamalab.divergence(m, fp32, tokens=256, window=128)
        assert d.kl_mean > 0 and 0 < d.top1_agreement <= 1
    finally:
        m.unload()


def test_more_bits_means_closer_to_fp32(tiny_quantized, fp32):
    kl = {}
    for name in ("gptq-4bit", "gptq-8bit"):
        m = tiny_quantized[name].load()
        kl[name] = llamalab.divergence(m, fp32, tokens=256, window=128).kl_mean
        m.unload()
    assert 0 < kl["gptq-8bit"] < kl["gptq-4bit"]


def test_wrong_scheme_for_a_checkpoint_says_which_it_is(tiny_quantized):
    with pytest.raises(InvalidSetting, match="gptq"):
        llamalab.load(tiny_quantized["gptq-4bit"].path, "awq")
    with pytest.raises(InvalidSetting, match="gptq-8bit"):
        llamalab.load(tiny_quantized["gptq-8bit"].path, "gptq-4bit")


def _rewrite_config(src, dst, qcfg):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["quantization_config"] = qcfg
    (dst / "config.json").write_text(json.dumps(cfg))
    (dst / "quantize_config.json").unlink(missing_ok=True)
    return dst


def test_autoawq_style_checkpoint_loads(tiny_quantized, tmp_path):
    """autoawq wrote {quant_method, zero_point, group_size, bits, version} and nothing else."""
    q = tiny_quantized["awq-4bit"]
    path = _rewrite_config(
        q.path,
        tmp_path / "autoawq",
        {
            "quant_method": "awq",
            "zero_point": True,
            "group_size": 128,
            "bits": 4,
            "version": "gemm",
        },
    )
    m = llamalab.load(str(path), "awq")
    assert m.generate("In the beginning", max_new_tokens=4, chat=False).new_tokens >= 1
    m.unload()


def test_autogptq_style_checkpoint_loads(tiny_quantized, tmp_path):
    """auto-gptq 0.7 wrote this quantization_config (format gptq v1, desc_act false)."""
    q = tiny_quantized["gptq-4bit"]
    path = _rewrite_config(
        q.path,
        tmp_path / "autogptq",
        {
            "bits": 4,
            "group_size": 128,
            "damp_percent": 0.01,
            "desc_act": False,
            "static_groups": False,
            "sym": True,
            "true_sequential": True,
            "model_name_or_path": None,
            "model_file_base_name": None,
            "quant_method": "gptq",
        },
    )
    m = llamalab.load(str(path), "gptq")
    assert m.generate("In the beginning", max_new_tokens=4, chat=False).new_tokens >= 1
    m.unload()


def test_load_of_an_unquantized_folder_asks_to_quantize(tiny_llama, tmp_path):
    copy = shutil.copytree(tiny_llama, tmp_path / "fresh")
    with pytest.raises(llamalab.ModelNotCached) as e:
        llamalab.load(str(copy), "awq")
    assert "llamalab.quantize" in e.value.fix
