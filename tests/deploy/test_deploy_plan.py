"""deployment_plan: sizing from the estimate, the vLLM/Docker/Kubernetes/Ollama artefacts,
offline validation."""

import pytest

from llamalab import deployment_plan as plan
from llamalab import providers, validate_manifests
from llamalab.plan import ollama
from llamalab.plan.deployment import PlanDoesNotFit

kv = pytest.importorskip("kubernetes_validate")


def test_70b_awq_fits_one_80gb_gpu_and_16bit_needs_two():
    awq = plan("llama-3.1-70b", "awq-4bit", "h100-80gb", context=8192)
    assert (awq.tensor_parallel, awq.pipeline_parallel, awq.gpus) == (1, 1, 1)
    assert "AWQ" in awq.vllm_command and "--quantization" not in awq.vllm_command  # auto: Marlin
    bf16 = plan("llama-3.1-70b", "bf16", "h100-80gb", context=8192)
    assert (bf16.tensor_parallel, bf16.nodes) == (2, 1)
    assert (
        "--tensor-parallel-size 2" in bf16.vllm_command
        and "--max-model-len 8192" in bf16.vllm_command
    )
    assert bf16.per_gpu_bytes <= 81559 * 2**20 * bf16.gpu_memory_utilization


def test_405b_16bit_spans_two_nodes_with_a_leaderworkerset():
    p = plan("llama-3.1-405b", "bf16", "h100-80gb", context=8192)
    assert (p.tensor_parallel, p.pipeline_parallel, p.nodes, p.gpus) == (8, 2, 2, 16)
    assert "--pipeline-parallel-size 2" in p.vllm_command
    kinds = [m.kind for m in p.kubernetes]
    assert "LeaderWorkerSet" in kinds and "Deployment" not in kinds
    lws = next(m for m in p.kubernetes if m.kind == "LeaderWorkerSet")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2


def test_tp_respects_head_divisibility():
    from llamalab import card
    from llamalab.plan.parallel import valid_tp

    c = card("smollm2-135m")  # 9 heads, 3 KV heads
    assert valid_tp(c, 1) and not valid_tp(c, 2) and not valid_tp(c, 4)


def test_every_manifest_validates_offline_and_a_broken_one_fails():
    for args in (
        ("llama-3.1-8b", "bf16", "l4"),
        ("llama-3.1-70b", "bf16", "h100-80gb"),
        ("llama-3.1-405b", "bf16", "h100-80gb"),
    ):
        p = plan(*args)
        rows = p.validate()
        assert rows and all(r["ok"] for r in rows), rows
        dep = next(m for m in p.kubernetes if m.kind in ("Deployment", "LeaderWorkerSet"))
        assert "/health" in p.kubernetes_yaml() and "secretKeyRef" in p.kubernetes_yaml()
    p = plan("llama-3.1-70b", "bf16", "h100-80gb")
    dep = next(m for m in p.kubernetes if m.kind == "Deployment")
    ctr = dep["spec"]["template"]["spec"]["containers"][0]
    assert ctr["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert any(
        v.get("emptyDir", {}).get("medium") == "Memory"
        for v in dep["spec"]["template"]["spec"]["volumes"]
    )
    broken = type(dep)(dep)
    broken["spec"] = {**dep["spec"], "replicas": "two"}
    assert not validate_manifests([broken])[0]["ok"]
    lws = next(
        m
        for m in plan("llama-3.1-405b", "bf16", "h100-80gb").kubernetes
        if m.kind == "LeaderWorkerSet"
    )
    bad = type(lws)(lws)
    bad["spec"] = {"replicas": 1, "leaderWorkerTemplate": {}}
    assert not validate_manifests([bad])[0]["ok"]


def test_a_combination_that_cannot_fit_names_what_would():
    with pytest.raises(PlanDoesNotFit) as e:
        plan("llama-3.1-405b", "bf16", "t4", max_nodes=3)
    assert "fits on 3 nodes" in e.value.fix


def test_secrets_hold_no_value_and_commands_take_keys_from_the_environment():
    p = plan("llama-3.1-8b", "awq-4bit", "l4")
    assert "${VLLM_API_KEY:?" in p.docker_run and "$HF_TOKEN" in p.docker_run  # no key: no start
    assert "-p 127.0.0.1:8000:8000" in p.docker_run  # this host only
    assert not [m for m in p.kubernetes if m.kind == "Secret"]  # the user creates them


def test_ollama_template_matches_the_models_own_chat_template():
    from jinja2 import Template

    import llamalab

    jinja = (llamalab.model_files("default") / "chat_template.jinja").read_text()
    fmt = ollama.chat_format(jinja)
    assert fmt.name == "chatml"
    system = ollama.default_system(jinja)
    assert system and "SmolLM" in system
    msgs = [{"role": "user", "content": "Hi there"}]
    want = Template(jinja).render(messages=msgs, add_generation_prompt=True)
    assert ollama.render(fmt, msgs, system) == want
    mf = ollama.modelfile("./smol.gguf", jinja, num_ctx=2048)
    assert (
        mf.startswith("FROM ./smol.gguf") and 'PARAMETER stop "<|im_end|>"' in mf and "SYSTEM" in mf
    )
    assert "{{ .Content }}" in mf and "PARAMETER num_ctx 2048" in mf


def test_ollama_formats_by_family_and_unknown_is_refused():
    assert ollama.chat_format(family="Llama 3.1").name == "llama3"
    assert ollama.chat_format(family="Mistral").name == "mistral"
    with pytest.raises(Exception, match="Write TEMPLATE by hand"):
        ollama.chat_format("{{ weird }}", family="Falcon")
    lines = ollama.commands("smol")
    assert lines[0] == "ollama create smol -f Modelfile" and "11434/api/generate" in lines[2]


def test_providers_are_data_with_sources_and_cost_fields():
    ps = providers()
    assert {"together", "huggingface", "replicate"} <= set(
        ps.name
    ) and "output_usd_per_million_tokens" in ps
    for p in ps.itertuples():
        assert (
            p.source and p.checked and p.base_url.startswith("https://") and p.api_key_env.isupper()
        )
