"""A plan per engine that fits the scheme: the weights it names exist in that format (or the plan
says how to make them), flags only where the server would not choose them, parsed against the
servers' documented CLIs (catalog/serve_flags.toml)."""

from dataclasses import replace

import pytest

import llamalab
from llamalab import catalog, deployment_plan
from llamalab.plan import commands


def test_a_gguf_scheme_gets_llama_server_not_the_bf16_repo():
    p = deployment_plan("llama-3.1-70b", "q4_k_m", "h100-80gb")
    assert p.engine == "llama.cpp" and p.vllm_command == ""
    assert p.command.startswith("llama-server -m /models/llama-3.1-70b-q4_k_m.gguf")
    assert "Meta-Llama" not in p.command and "meta-llama" not in p.command
    assert any("export_gguf('llama-3.1-70b', outtype='q4_k_m')" in r for r in p.reasons)
    assert "--parallel" in p.command and "${LLAMA_API_KEY:?" in p.docker_run


def test_a_gguf_plan_also_gives_vllms_own_gguf_load_with_what_it_is():
    """vLLM loads a single-file GGUF (experimental): the plan gives that command as an alternative,
    parsed against vLLM's flags, with the Hub tokenizer its docs advise and no --quantization."""
    p = deployment_plan("llama-3.1-8b", "q8_0", "l4")
    (why,) = [r for r in p.reasons if r.startswith("vLLM can also load this file")]
    command = why.split("`")[1]
    assert command.startswith("vllm serve /models/llama-3.1-8b-q8_0.gguf --tokenizer ")
    assert "meta-llama/Llama-3.1-8B-Instruct" in command and "--quantization" not in command
    commands.check("vllm", command.split()[2:])
    assert "highly experimental" in why and "vllm-gguf-plugin" in why
    assert not any(
        "vLLM can also" in r for r in deployment_plan("llama-3.1-8b", "bf16", "l4").reasons
    )


def test_8bit_gptq_and_missing_awq_name_a_folder_to_make_not_a_wrong_checkpoint():
    g8 = deployment_plan("llama-3.1-70b", "gptq-8bit", "h100-80gb")
    assert "INT4" not in g8.command and "/models/llama-3.1-70b-gptq-8bit" in g8.command
    assert any("llamalab.quantize('llama-3.1-70b', 'gptq', bits=8)" in r for r in g8.reasons)
    awq = deployment_plan("mixtral-8x22b", "awq-4bit", "h100-80gb")
    assert "/models/mixtral-8x22b-awq-4bit" in awq.command and "--served-model-name" in awq.command


def test_published_quantized_checkpoints_let_vllm_pick_its_kernel():
    """Forcing --quantization awq/gptq keeps vLLM off Marlin; config.json says the method."""
    for scheme in ("awq-4bit", "gptq-4bit"):
        p = deployment_plan("llama-3.1-8b", scheme, "l4")
        assert "INT4" in p.command and "--quantization" not in p.command
    assert "--quantization bitsandbytes" in deployment_plan("llama-3.1-8b", "nf4", "l4").command


def test_dtype_follows_the_gpus_compute_capability():
    t4 = deployment_plan("llama-3.1-8b", "bf16", "t4")
    assert "--dtype half" in t4.command and "bfloat16" not in t4.command
    assert any("no bf16" in r for r in t4.reasons)
    assert "--dtype bfloat16" in deployment_plan("llama-3.1-8b", "bf16", "l4").command


def test_schemes_vllm_cannot_serve_are_refused_with_an_alternative():
    with pytest.raises(llamalab.SchemeUnavailable, match="no int8") as e:
        deployment_plan("llama-3.1-8b", "int8", "l4")
    assert "gptq-8bit" in e.value.fix
    old = replace(catalog.gpu("t4"), display="an sm 7.0 GPU", cuda_capability="7.0")
    with pytest.raises(llamalab.SchemeUnavailable, match="compute capability 7.5"):
        commands.quantization_flag(catalog.scheme("awq-4bit"), old)


def test_fp8_serves_405b_on_one_node_from_a_published_checkpoint():
    """FP8 halves bf16's bytes: Llama 3.1 405B fits one node of 8 H100s (TP 8), vLLM reads the
    format from config.json; an A100 runs it weight-only, a T4 not at all, a CPU load says where."""
    p = deployment_plan("llama-3.1-405b", "fp8", "h100-80gb")
    assert p.gpus == 8 and p.tensor_parallel == 8 and p.pipeline_parallel == 1
    assert p.command.startswith("vllm serve neuralmagic/Meta-Llama-3.1-405B-Instruct-FP8 ")
    assert "--quantization" not in p.command
    a100 = deployment_plan("llama-3.1-8b", "fp8", "a100-80gb")
    assert any("weight-only through FP8 Marlin" in r for r in a100.reasons)
    with pytest.raises(llamalab.SchemeUnavailable, match="compute capability 8.0"):
        deployment_plan("llama-3.1-8b", "fp8", "t4")
    made = deployment_plan("qwen2.5-7b", "fp8", "l4")
    assert "/models/qwen2.5-7b-fp8" in made.command
    assert any("FP8_DYNAMIC" in r for r in made.reasons)
    with pytest.raises(llamalab.SchemeUnavailable, match="NVIDIA GPUs only"):
        llamalab.load("default", "fp8", device="cpu")


def test_commands_are_parsed_against_the_documented_flags():
    commands.check("vllm", ["m", "--tensor-parallel-size", "2", "--dtype", "half"])
    with pytest.raises(llamalab.InvalidSetting, match="would not start"):
        commands.check("vllm", ["m", "--tensor-paralel-size", "2"])  # misspelt
    with pytest.raises(llamalab.InvalidSetting, match="would not start"):
        commands.check("vllm", ["m", "--kv-cache-dtype", "int4"])  # not a choice
    with pytest.raises(llamalab.InvalidSetting):
        commands.check("llama-server", ["-m", "x.gguf", "--split-mode", "diagonal"])
