"""The Kubernetes manifests a platform team would accept, one test per property, and the Ollama
Modelfile's system prompts and num_ctx (llamalab/plan/kubernetes.py, llamalab/plan/ollama.py)."""

import math
import re

import pytest
from jinja2 import Template

from llamalab import deployment_plan as plan
from llamalab import validate_manifests
from llamalab.core.errors import InvalidSetting
from llamalab.plan import kubernetes as k8s
from llamalab.plan import ollama
from llamalab.plan.estimator import estimate

kv = pytest.importorskip("kubernetes_validate")

CASES = {
    "8b-l4": ("llama-3.1-8b", "bf16", "l4"),  # one GPU, one pod
    "70b-tp2": ("llama-3.1-70b", "bf16", "h100-80gb"),  # TP 2 on one node
    "405b-lws": ("llama-3.1-405b", "bf16", "h100-80gb"),  # TP 8 × PP 2: a LeaderWorkerSet
}


@pytest.fixture(scope="module", params=list(CASES))
def p(request):
    return plan(*CASES[request.param])


def _workload(p):
    return next(m for m in p.kubernetes if m.kind in ("Deployment", "LeaderWorkerSet"))


def _templates(p) -> list[dict]:
    """Every pod template of the plan (a Deployment's, or an LWS's leader and worker)."""
    w = _workload(p)
    if w.kind == "Deployment":
        return [w["spec"]["template"]]
    lwt = w["spec"]["leaderWorkerTemplate"]
    return [lwt["leaderTemplate"], lwt["workerTemplate"]]


def _containers(p) -> list[dict]:
    return [c for t in _templates(p) for c in t["spec"]["containers"]]


def _serving(p) -> dict:
    """The container that runs the API (the Deployment's, or the LWS leader's)."""
    return _templates(p)[0]["spec"]["containers"][0]


def _manifests(name="x", args=("org/model", "--port", "8000"), tp=1, pp=1, replicas=1, **kw):
    e = estimate("llama-3.1-8b", "bf16", 8192, device="cuda", engine="vllm")
    return k8s.manifests(name, list(args), tp, pp, replicas, e, **kw)


# ---- secrets -------------------------------------------------------------------------------------


def test_no_plan_emits_a_secret_and_every_secret_ref_is_a_secret_the_user_creates(p):
    assert not [m for m in p.kubernetes if m.kind == "Secret"]
    name = _workload(p).name.removeprefix("vllm-")
    lines = k8s.secret_commands(name)
    assert all(line.startswith("kubectl create secret generic ") for line in lines)
    created = {line.split()[4] for line in lines}
    refs = {
        env["valueFrom"]["secretKeyRef"]["name"]
        for c in _containers(p)
        for env in c["env"]
        if "valueFrom" in env
    }
    assert refs and refs <= created
    # values come from the shell's environment, never the line: nothing to leak or overwrite
    assert all(re.search(r'="\$[A-Z_]+"$', line) for line in lines)


# ---- image and PID 1 -----------------------------------------------------------------------------


def test_the_image_is_a_pinned_vllm_release(p):
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", k8s.IMAGE)
    assert all(c["image"] == k8s.IMAGE for c in _containers(p))
    assert ":latest" not in p.kubernetes_yaml() and ":latest" not in p.docker_run


def test_vllm_is_pid_1_exec_form_or_an_exec_at_the_end_of_the_shell(p):
    for c in _containers(p):
        if c["command"][0] in ("/bin/bash", "/bin/sh", "bash", "sh"):
            (script,) = c["args"]
            last = re.split(r"&&|;", script)[-1].strip()
            assert last.startswith(("exec vllm serve ", "exec ray start ")), script
        else:
            assert c["command"] == ["vllm", "serve"]
            assert c["args"][0].count("/") == 1 and "--port" in c["args"]
    serving = _serving(p)
    assert serving["command"] == ["vllm", "serve"] or "exec vllm serve " in serving["args"][0]


# ---- storage -------------------------------------------------------------------------------------


def test_no_read_write_once_volume_is_shared_by_several_pods(p):
    pods = p.replicas * p.pipeline_parallel
    rwo = [
        m
        for m in p.kubernetes
        if m.kind == "PersistentVolumeClaim" and "ReadWriteOnce" in m["spec"]["accessModes"]
    ]
    assert pods == 1 or not rwo
    if pods > 1:  # each pod has its own cache in ephemeral storage, requested as such
        for t in _templates(p):
            models = next(v for v in t["spec"]["volumes"] if v["name"] == "models")
            assert "emptyDir" in models and models["emptyDir"]["sizeLimit"]
            res = t["spec"]["containers"][0]["resources"]
            assert res["requests"]["ephemeral-storage"] == models["emptyDir"]["sizeLimit"]


def test_several_replicas_get_per_pod_storage_and_a_shared_rwo_volume_is_refused():
    ms = _manifests(replicas=3)
    assert not [m for m in ms if m.kind == "PersistentVolumeClaim"]
    with pytest.raises(InvalidSetting, match="ReadWriteOnce"):
        _manifests(replicas=3, storage="pvc")
    with pytest.raises(InvalidSetting, match="ReadWriteOnce"):
        _manifests(tp=8, pp=2, storage="pvc")


def test_rwx_storage_needs_its_class_and_gives_a_read_write_many_claim():
    with pytest.raises(InvalidSetting, match="storage_class"):
        _manifests(tp=8, pp=2, storage="rwx")
    ms = _manifests(tp=8, pp=2, storage="rwx", storage_class="nfs-client")
    (pvc,) = [m for m in ms if m.kind == "PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == "nfs-client"
    assert all(r["ok"] for r in validate_manifests(ms)), validate_manifests(ms)


def test_one_pod_on_a_rwo_volume_is_replaced_not_surged():
    dep = next(m for m in _manifests() if m.kind == "Deployment")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


# ---- probes --------------------------------------------------------------------------------------


def test_the_startup_probe_covers_loading_not_the_download_the_init_container_did(p):
    c = _serving(p)
    probe = c["startupProbe"]
    window = probe["periodSeconds"] * probe["failureThreshold"]
    e = estimate(p.model, p.scheme, p.context, device="cuda", engine="vllm")
    weights = int(e.breakdown["weights"])
    b = k8s.startup_budget(weights, p.pipeline_parallel)
    assert window >= b.load_s + b.engine_s + b.ray_s  # what follows the pre-staged download
    assert window >= k8s.MIN_STARTUP_S
    # recomputed without the download: only the floor or the load, engine and Ray terms set it
    expected = max(k8s.MIN_STARTUP_S, k8s.STARTUP_MARGIN * (b.load_s + b.engine_s + b.ray_s))
    assert b.total_s == math.ceil(expected) and window - b.total_s < k8s.PROBE_PERIOD_S
    assert b.download_s == weights / k8s.DOWNLOAD_BYTES_S  # still shown in the plan's reasons
    assert any(
        f"about {b.download_s:.0f} s" in r and "init container" in r.lower() for r in p.reasons
    )
    assert "initialDelaySeconds" not in c["livenessProbe"]  # the startupProbe gates it


def test_the_startup_window_grows_with_the_weights_and_ignores_the_link_speed():
    small, big = k8s.startup_budget(16e9), k8s.startup_budget(810e9, pp=2)
    assert big.total_s > small.total_s >= k8s.MIN_STARTUP_S
    assert big.ray_s == k8s.RAY_CLUSTER_S and small.ray_s == 0
    fast = k8s.startup_budget(810e9, pp=2, download_bytes_s=1e9)
    assert fast.total_s == big.total_s and fast.download_s < big.download_s
    assert "download" not in str(fast).split("startupProbe window")[1]


# ---- pre-staged weights --------------------------------------------------------------------------


def _init(t) -> list[dict]:
    return t["spec"].get("initContainers", [])


def test_an_init_container_downloads_the_served_checkpoint_before_vllm_starts(p):
    model = p.command.split()[2]  # vllm serve <model> ...
    for t in _templates(p):
        (init,) = _init(t)  # init containers run, in order, to completion before containers start
        assert init["command"][:4] == ["python3", "-c", k8s.PRESTAGE_SCRIPT, model]
        assert (
            init["image"] == k8s.IMAGE
            and init["securityContext"]["allowPrivilegeEscalation"] is False
        )
        env = {e["name"]: e for e in init["env"]}
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hf-token"
        assert env["HF_HOME"]["value"] == k8s.MODELS_PATH  # the cache the server reads
        assert {m["mountPath"] for m in init["volumeMounts"]} >= {k8s.MODELS_PATH, k8s.HOME}
        assert "original/**/*" in init["command"]  # vLLM's own ignore pattern: no second copy


def test_the_serving_containers_no_longer_download(p):
    for c in _containers(p):
        env = {e["name"]: e for e in c["env"]}
        assert env["HF_HUB_OFFLINE"]["value"] == "1" and "HF_TOKEN" not in env
        assert env["HF_HOME"]["value"] == k8s.MODELS_PATH


def test_a_shared_rwx_cache_is_staged_once_by_the_leader():
    ms = _manifests(tp=8, pp=2, storage="rwx", storage_class="nfs-client")
    lwt = next(m for m in ms if m.kind == "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    assert len(_init(lwt["leaderTemplate"])) == 1 and not _init(lwt["workerTemplate"])
    per_pod = next(m for m in _manifests(tp=8, pp=2) if m.kind == "LeaderWorkerSet")
    lwt = per_pod["spec"]["leaderWorkerTemplate"]
    assert len(_init(lwt["leaderTemplate"])) == len(_init(lwt["workerTemplate"])) == 1


def _run(script: str, *argv, env=None, timeout=30):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_the_prestage_script_refuses_a_local_path_that_is_not_on_the_volume(tmp_path):
    missing = _run(k8s.PRESTAGE_SCRIPT, str(tmp_path / "absent"))
    assert missing.returncode == 1 and "not on the models volume" in missing.stderr
    (tmp_path / "config.json").write_text("{}")
    assert _run(k8s.PRESTAGE_SCRIPT, str(tmp_path)).returncode == 0


# ---- shutdown ------------------------------------------------------------------------------------


def test_the_grace_period_holds_the_prestop_sleep_the_drain_and_vllms_exit(p):
    for t in _templates(p):
        grace = t["spec"]["terminationGracePeriodSeconds"]
        (ctr,) = t["spec"]["containers"]
        cmd = ctr["lifecycle"]["preStop"]["exec"]["command"]
        assert cmd[:3] == ["python3", "-c", k8s.DRAIN_SCRIPT]  # exec form: no shell
        sleep, drain, _poll, port = (int(a) for a in cmd[3:7])
        assert port == k8s.PORT and sleep == k8s.PRESTOP_SLEEP_S and drain == k8s.DRAIN_S
        assert grace >= sleep + drain + k8s.EXIT_S > 30  # Kubernetes' default grace is 30 s
    _leader, *workers = _containers(p)
    assert all(
        w["lifecycle"]["preStop"]["exec"]["command"][-1] == "LWS_LEADER_ADDRESS" for w in workers
    )
    assert any(k8s.SHUTDOWN in r for r in p.reasons)


def test_drain_s_sets_the_prestop_budget_and_the_grace_period():
    dep = next(m for m in _manifests(drain_s=600) if m.kind == "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == k8s.PRESTOP_SLEEP_S + 600 + k8s.EXIT_S
    assert spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][4] == "600"
    with pytest.raises(InvalidSetting):
        _manifests(drain_s=-1)


class _Metrics:
    """A stand-in for vLLM's /metrics: `busy` requests running, one fewer per scrape."""

    def __init__(self, busy: int):
        import http.server
        import threading

        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                state.scrapes += 1
                body = (
                    "# TYPE vllm:num_requests_running gauge\n"
                    f'vllm:num_requests_running{{engine="0",model_name="m"}} {float(state.busy)}\n'
                    'vllm:num_requests_waiting{engine="0",model_name="m"} 0.0 1700000000000\n'
                    "vllm:num_requests_waiting_by_reason 7.0\n"  # another metric: not counted
                ).encode()
                state.busy = max(0, state.busy - 1)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.busy, self.scrapes = busy, 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_prestop_waits_while_vllm_runs_requests_and_returns_when_none_is_left():
    import os
    import time

    m = _Metrics(busy=3)
    try:
        start = time.monotonic()
        env = {**os.environ, "LEADER": "127.0.0.1"}
        done = _run(k8s.DRAIN_SCRIPT, "0", "20", "0.2", str(m.port), "LEADER", env=env)
        took = time.monotonic() - start
    finally:
        m.close()
    assert done.returncode == 0, done.stderr
    assert m.scrapes == 4 and m.busy == 0  # 3, 2, 1 running, then 0: returned at once
    assert took < 20  # not the budget


def test_the_prestop_gives_up_at_its_budget_or_when_the_server_is_gone():
    import time

    m = _Metrics(busy=10**6)
    try:
        start = time.monotonic()
        done = _run(k8s.DRAIN_SCRIPT, "0", "1", "0.2", str(m.port))
        took = time.monotonic() - start
    finally:
        m.close()
    assert done.returncode == 0 and 1 <= took < 10 and m.busy > 0
    gone = _run(k8s.DRAIN_SCRIPT, "0", "60", "0.2", str(m.port))  # nothing listens any more
    assert gone.returncode == 0


def test_workers_have_no_http_probes_and_the_leader_does():
    p = plan(*CASES["405b-lws"])
    leader, worker = _containers(p)
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(leader)
    assert not {"startupProbe", "livenessProbe", "readinessProbe"} & set(worker)


# ---- scheduling and security ---------------------------------------------------------------------


def _match_expressions(template) -> list[dict]:
    terms = template["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    return [x for t in terms for x in t["matchExpressions"]]


def test_pods_select_the_gpu_product_label_and_tolerate_the_gpu_taint():
    ms = _manifests(gpu="h100-80gb")
    tmpl = next(m for m in ms if m.kind == "Deployment")["spec"]["template"]
    assert _match_expressions(tmpl) == [
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]}
    ]
    assert k8s.GPU_TOLERATION in tmpl["spec"]["tolerations"]
    own = next(m for m in _manifests(gpu_product="NVIDIA-H100-PCIe") if m.kind == "Deployment")
    assert _match_expressions(own["spec"]["template"])[0]["values"] == ["NVIDIA-H100-PCIe"]
    with pytest.raises(InvalidSetting, match="gpu_product"):
        _manifests(gpu="no-such-gpu")


def test_without_a_gpu_name_pods_select_a_gpu_memory_that_holds_their_share(p):
    for t in _templates(p):
        (expr,) = _match_expressions(t)
        assert expr["key"] in ("nvidia.com/gpu.product", "nvidia.com/gpu.memory")
        if expr["key"] == "nvidia.com/gpu.memory":
            share_mib = p.estimate_bytes / p.gpus / 2**20
            assert expr["operator"] == "Gt" and int(expr["values"][0]) >= share_mib - 1
        assert k8s.GPU_TOLERATION in t["spec"]["tolerations"]


def test_every_catalog_gpu_has_a_product_label():
    from llamalab import catalog

    for name in catalog.gpu_names():
        assert all(re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9.]*", v) for v in k8s.gpu_products(name))


def test_pods_run_non_root_without_privilege_escalation(p):
    for t in _templates(p):
        pod = t["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        c = t["spec"]["containers"][0]
        assert c["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        # a non-root user needs a writable HOME and Hub cache, on volumes
        env = {e["name"]: e.get("value") for e in c["env"]}
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert env["HOME"] in mounts and env["HF_HOME"] in mounts


# ---- /dev/shm ------------------------------------------------------------------------------------


def _gib(q: str) -> int:
    assert q.endswith("Gi"), q
    return int(q[:-2])


def test_dev_shm_is_sized_for_ray_across_nodes_and_counted_in_the_memory_limit(p):
    for t in _templates(p):
        shm = [v for v in t["spec"]["volumes"] if v["name"] == "shm"]
        if p.tensor_parallel == 1 and p.pipeline_parallel == 1:
            assert not shm
            continue
        (vol,) = shm
        size = _gib(vol["emptyDir"]["sizeLimit"])
        assert vol["emptyDir"]["medium"] == "Memory"
        assert size == (k8s.SHM_RAY_GIB if p.pipeline_parallel > 1 else k8s.SHM_ONE_NODE_GIB)
        limit = _gib(t["spec"]["containers"][0]["resources"]["limits"]["memory"])
        assert limit >= size + 16


# ---- monitoring, autoscaling, disruption ---------------------------------------------------------


def test_a_pod_monitor_scrapes_the_serving_pods_metrics_port(p):
    (mon,) = [m for m in p.kubernetes if m.kind == "PodMonitor"]
    labels = _templates(p)[0]["metadata"]["labels"]
    selector = mon["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    (ep,) = mon["spec"]["podMetricsEndpoints"]
    ports = {port["name"] for port in _serving(p)["ports"]}
    assert ep["path"] == "/metrics" and ep["port"] in ports
    if p.pipeline_parallel > 1:  # only the leader runs the API server
        assert selector["role"] == "leader"


def test_the_autoscaler_scales_the_workload_on_the_waiting_queue(p):
    (so,) = [m for m in p.kubernetes if m.kind == "ScaledObject"]
    w = _workload(p)
    ref = so["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == (w.kind, w.name)
    (trigger,) = so["spec"]["triggers"]
    query = trigger["metadata"]["query"]
    assert query.startswith("sum(vllm:num_requests_waiting{") and "model_name=" in query
    assert so["spec"]["minReplicaCount"] == p.replicas < so["spec"]["maxReplicaCount"]
    with pytest.raises(InvalidSetting, match="max_replicas"):
        _manifests(replicas=2, max_replicas=1)


def test_a_disruption_budget_covers_every_pod(p):
    (pdb,) = [m for m in p.kubernetes if m.kind == "PodDisruptionBudget"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert all(selector.items() <= t["metadata"]["labels"].items() for t in _templates(p))
    assert pdb["spec"]["maxUnavailable"] == 1


# ---- validation and YAML -------------------------------------------------------------------------


def test_every_object_validates_and_custom_resources_are_checked(p):
    rows = p.validate()
    assert rows and all(r["ok"] for r in rows), rows
    kinds = {r["kind"]: r["how"] for r in rows}
    assert kinds["PodMonitor"].startswith("structural")
    assert kinds["ScaledObject"].startswith("structural")


def test_a_broken_pod_monitor_or_scaled_object_fails_validation():
    ms = {m.kind: m for m in _manifests()}
    mon = type(ms["PodMonitor"])(ms["PodMonitor"], spec={"selector": {}})
    so = type(ms["ScaledObject"])(ms["ScaledObject"], spec={"scaleTargetRef": {}})
    rows = validate_manifests([mon, so])
    assert not rows[0]["ok"] and "podMetricsEndpoints" in rows[0]["error"]
    assert not rows[1]["ok"] and "triggers" in rows[1]["error"]


def test_the_yaml_has_no_anchors(p):
    assert not re.search(r"[&*]id\d+", p.kubernetes_yaml())


# ---- Ollama --------------------------------------------------------------------------------------

# mistralai/Mistral-7B-Instruct-v0.3's chat_template, without its tool-calling branches.
MISTRAL_V03 = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- endif %}
{%- endfor %}"""

# google/gemma-2-*-it's chat_template (no system role).
GEMMA_2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)

# Gemma 3's chat_template (transformers models/gemma3/convert_gemma3_weights.py), text only.
GEMMA_3 = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}"""

SYSTEM = {"role": "system", "content": "Answer in French."}
CHAT = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Bonjour"},
    {"role": "user", "content": "Name a colour."},
]


def _raise(message):
    raise ValueError(message)  # what transformers' apply_chat_template gives templates


def _jinja(template, messages, gen=False) -> str:
    return Template(template).render(
        messages=messages,
        add_generation_prompt=gen,
        bos_token="",
        eos_token="</s>",
        raise_exception=_raise,
    )


def test_mistral_keeps_the_system_prompt_on_the_last_user_message():
    fmt = ollama.chat_format(family="Mistral 7B")
    for msgs in ([SYSTEM, CHAT[0]], [SYSTEM, *CHAT], CHAT):
        assert ollama.render(fmt, msgs) == _jinja(MISTRAL_V03, msgs)
    assert "Answer in French." in ollama.render(fmt, [SYSTEM, *CHAT])
    assert "$.System" in fmt.template  # the Go template reads Ollama's system prompt


def test_gemma_sends_no_system_turn_and_puts_the_system_prompt_in_the_first_user_turn():
    fmt = ollama.chat_format(family="Gemma 2")
    assert ollama.render(fmt, CHAT) == _jinja(GEMMA_2, CHAT, gen=True)
    with_system = ollama.render(fmt, [SYSTEM, *CHAT])
    assert with_system == _jinja(GEMMA_3, [SYSTEM, *CHAT], gen=True)
    assert "<start_of_turn>system" not in with_system and "Answer in French." in with_system
    assert "<start_of_turn>system" not in fmt.template and "$system" in fmt.template
    with pytest.raises(ValueError, match="System role not supported"):
        _jinja(GEMMA_2, [SYSTEM, *CHAT])  # why no system turn: the model has none


def test_num_ctx_is_capped_with_a_note_and_the_plan_never_writes_128k():
    mf = ollama.modelfile("./m.gguf", family="Llama 3.1", num_ctx=131072)
    assert (
        f"PARAMETER num_ctx {ollama.DEFAULT_NUM_CTX}\n" in mf and "# num_ctx 131072 lowered" in mf
    )
    assert "lowered" not in ollama.modelfile("./m.gguf", family="Llama 3.1", num_ctx=4096)
    p = plan("llama-3.1-8b", "bf16", "h100-80gb", context=131072)
    ctx = int(re.search(r"PARAMETER num_ctx (\d+)", p.ollama_modelfile).group(1))
    assert ctx <= ollama.DEFAULT_NUM_CTX


def test_laptop_num_ctx_is_what_the_estimate_fits_in_the_laptop_budget():
    budget = ollama.LAPTOP_BUDGET_BYTES
    n = ollama.laptop_num_ctx("llama-3.1-8b")
    fits = lambda ctx: estimate("llama-3.1-8b", "q4_k_m", ctx).peak_bytes <= budget
    assert n >= ollama.DEFAULT_NUM_CTX and fits(n) and not fits(n + 1)
    assert ollama.laptop_num_ctx("llama-3.1-70b") == 0  # its weights alone do not fit


@pytest.mark.slow  # loads the embedded model's tokenizer (~14 s under load)
def test_the_plans_modelfile_renders_as_smollm2_does_with_its_default_system_prompt():
    """SmolLM2's template inserts a system prompt when the chat has none: the plan's Modelfile
    says it as SYSTEM (written by the same `ollama.modelfile` as `ollama_modelfile(gguf,
    chat_template)`), so Ollama renders every check conversation as the source tokenizer does."""
    import llamalab
    from llamalab.serving.template_check import ExportMismatch, check_modelfile

    source = (llamalab.model_files("default") / "chat_template.jinja").read_text()
    assert ollama.known_template("smollm2-135m") == source  # the catalog's copy is the model's
    mf = plan("default", "bf16", "l4").ollama_modelfile
    assert mf == ollama.modelfile("./smollm2-135m-q4_k_m.gguf", source, num_ctx=8192)
    system = ollama.parse_modelfile(mf).system
    assert system and system == ollama.default_system(source)
    assert check_modelfile(mf, "default").renders > 0
    without = ollama.modelfile("./m.gguf", family="SmolLM2", num_ctx=8192)  # the old plan's
    with pytest.raises(ExportMismatch, match="user alone"):
        check_modelfile(without, "default")
    mine = plan("default", "bf16", "l4", chat_template=source.replace("SmolLM", "Bob"))
    assert "named Bob" in ollama.parse_modelfile(mine.ollama_modelfile).system


def test_mistral_formats_other_than_v3_get_no_modelfile_rather_than_a_wrong_one():
    """Mistral's cookbook lists Ministral 8B 2410 under V3-Tekken (no spaces around [INST]);
    Mistral Small 3 puts the system prompt in [SYSTEM_PROMPT]: the V3 template would render
    both wrongly, so the plan says why instead of writing it."""
    for model in ("ministral-8b", "mistral-small"):
        p = plan(model, "bf16", "h100-80gb")
        assert p.ollama_modelfile == ""
        assert any("No Ollama Modelfile" in r and "Tekken" in r for r in p.reasons)
    with pytest.raises(InvalidSetting, match="SYSTEM_PROMPT"):
        ollama.chat_format("[SYSTEM_PROMPT]{{ s }}[/SYSTEM_PROMPT][INST]{{ u }}[/INST]")
    assert "[INST] " in plan("mistral-7b", "bf16", "h100-80gb").ollama_modelfile  # V3 still
    # one family, two formats: Mixtral 8x7B is V1 (spaces around [INST]), 8x22B is V3
    v1 = plan("mixtral-8x7b", "awq-4bit", "h100-80gb")
    assert v1.ollama_modelfile == "" and any("V1 format" in r for r in v1.reasons)
    assert "[INST] " in plan("mixtral-8x22b", "awq-4bit", "h100-80gb").ollama_modelfile
