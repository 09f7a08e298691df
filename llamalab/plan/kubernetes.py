"""Kubernetes manifests for a vLLM deployment sized by the calculator, and their offline validation.
Pure data (dicts): nothing is applied.

What a platform team asks of them, and the upstream source of each choice:

- a pinned image (`IMAGE`); vLLM itself as PID 1 — exec form, since a shell does not pass signals
  on (Docker's build check JSONArgsRecommended) and vLLM's image is exec form already
  (docker/Dockerfile ENTRYPOINT); a non-root, no-escalation securityContext (the commented
  defaults of vllm-project/production-stack helm/values.yaml); node affinity on NVIDIA GPU feature
  discovery's `nvidia.com/gpu.product` label with the `nvidia.com/gpu` toleration, added
  explicitly because not every cluster runs the ExtendedResourceToleration admission plugin
  (Azure/AKS#1449);
- the weights pre-staged by an init container (`prestage`: the same image, the Hub token from
  the `hf-token` secret, vLLM's own download filter), so the serving container starts with
  `HF_HUB_OFFLINE=1` and no token: vLLM 0.11 then reads the Hub cache only
  (vllm/model_executor/model_loader/weight_utils.py:370, vllm/transformers_utils/config.py:500);
- a startupProbe sized to the load time (`startup_budget`; the download is the init container's
  and no probe times it): vLLM 0.11 binds its port but serves only once the model is loaded
  (vllm/entrypoints/openai/api_server.py `setup_server`), and a probe that gives up too early
  kills the start ("KeyboardInterrupt: terminated", vLLM docs/deployment/k8s.md,
  Troubleshooting); liveness/readiness on `/health`;
- a drain before SIGTERM (`shutdown`, `DRAIN_SCRIPT`): vLLM 0.11 does not finish in-flight
  requests on SIGTERM (see `SHUTDOWN`), so the preStop hook waits for the endpoint removal to
  propagate, then until vLLM's own gauges say no request is running or waiting, and
  `terminationGracePeriodSeconds` covers both and vLLM's exit;
- no Secret objects: the pods read `secretKeyRef`s to secrets the user creates with
  `secret_commands()` (`kubectl create` refuses to overwrite an existing one);
- one ReadWriteOnce PVC only when one pod uses it; several pods (replicas, or the nodes of a
  LeaderWorkerSet) get a per-pod cache in ephemeral storage, as LWS's vLLM example does
  (kubernetes-sigs/lws docs/examples/vllm/GPU/lws.yaml: `ephemeral-storage`, no shared volume;
  vLLM docs/serving/parallelism_scaling.md: "Download the model on every node ... or store the
  model on a distributed file system"), or a ReadWriteMany PVC the user names;
- `/dev/shm` in memory, sized for Ray across nodes, counted in the memory limit (a Memory
  emptyDir's files count against the container's limit: Kubernetes EmptyDirVolumeSource);
- a PodMonitor for vLLM's `/metrics` (outside its API-key check: api_server.py
  AuthenticationMiddleware checks `/v1` only), a KEDA ScaledObject on `vllm:num_requests_waiting`
  (production-stack tutorials/20-keda-autoscaling.md) and a PodDisruptionBudget.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass

from ..core import validate
from ..core.errors import InvalidSetting

PORT = 8000

# vLLM 0.11.0 (PyPI 2025-10-04): its metric names (vllm/v1/metrics/loggers.py), /health and
# API-key paths (api_server.py) are what these manifests assume. Docker Hub tags vLLM's releases
# vX.Y.Z. Raise it deliberately, after reading the release notes (metric names change: vLLM
# docs/usage/metrics.md, deprecation policy).
IMAGE_TAG = "v0.11.0"
IMAGE = f"vllm/vllm-openai:{IMAGE_TAG}"

# Non-root: the UID of vLLM's own `vllm-openai-nonroot` image target (0.34 docker/Dockerfile,
# UID 2000, HOME /home/vllm). The default image has no USER; it runs as any UID given a writable
# HOME and Hugging Face cache (below) and a USER name (torch's caches call getpass.getuser()).
RUN_AS_USER = 2000
HOME = "/home/vllm"
MODELS_PATH = "/models"  # HF_HOME: the Hub cache, on the models volume

# Start-up budget (assumptions, stated; pass your own to `manifests`/`startup_budget`):
DOWNLOAD_BYTES_S = 100e6  # Hub → pod: ~1 Gbit/s effective. An assumption, not a measurement.
LOAD_BYTES_S = 1e9  # safetensors from local disk into GPU memory. An assumption.
ENGINE_START_S = 300  # torch.compile + CUDA-graph capture + KV profiling; vLLM logs each. Assumed.
RAY_CLUSTER_S = 300  # vLLM examples/online_serving/multi-node-serving.sh: ray_init_timeout=300
STARTUP_MARGIN = 1.5  # headroom over the sum above
MIN_STARTUP_S = 600  # production-stack helm/values.yaml startupProbe: 15 s + 10 s × 60
PROBE_PERIOD_S = 10  # the same startupProbe's period

# Pre-staging (init container): what it downloads is what vLLM 0.11 would, less its default
# ignore pattern (vllm/config/load.py:113: "original/**/*", Llama's duplicate consolidated
# checkpoint). A local path (weights you made and copied to the models volume) is only checked.
PRESTAGE_IGNORE = ("original/**/*",)
PRESTAGE_SCRIPT = """\
import os, sys
model = sys.argv[1]
if model.startswith("/"):
    found = os.path.isfile(os.path.join(model, "config.json")) or os.path.isfile(model)
    sys.exit(None if found else f"{model} is not on the models volume: copy it there first")
from huggingface_hub import snapshot_download
print(snapshot_download(model, ignore_patterns=sys.argv[2:]), flush=True)
"""
PRESTAGE_MEMORY = "4Gi"  # the downloader's limit (huggingface_hub, no model in memory). Assumed.

# Shutdown. What vLLM 0.11.0 does on SIGTERM (read in its wheel, vllm-0.11.0 on PyPI): the signal
# handler cancels uvicorn's serve task (vllm/entrypoints/launcher.py:76-87) and `serve_http` hands
# back uvicorn's shutdown without running it (launcher.py:92-100); `run_server_worker` then leaves
# `build_async_engine_client`, whose `finally` shuts the engine down (api_server.py:1902-1933,
# 238-240), and only afterwards awaits uvicorn's shutdown (api_server.py:1935-1937: "Await server
# shutdown only after the backend context is exited"). Requests still running lose their engine:
# 0.11 aborts them, and has no flag to wait (vLLM added `--shutdown-timeout` later, PR
# vllm-project/vllm#36666, which says SIGTERM used to terminate "without coordinating request
# handling"). So the manifests drain before SIGTERM, in the preStop hook, which runs first and
# whose time counts in the grace period (Kubernetes API, Container.lifecycle.preStop: "The Pod's
# termination grace period countdown begins before the PreStop hook is executed";
# https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/).
SHUTDOWN = "vLLM 0.11 aborts in-flight requests on SIGTERM; the preStop hook drains them first"
# A deleted pod leaves its Service's EndpointSlice at once, but kube-proxy, DNS and gateways learn
# it later: requests keep arriving meanwhile. KServe's LLM pods sleep 15 s in preStop for this
# (kserve/kserve PR #5496). An assumption about your cluster: raise it behind slow gateways.
PRESTOP_SLEEP_S = 15
DRAIN_S = 120  # the longest in-flight request waited for (a 2k-token answer at ~17 tok/s). Assumed.
EXIT_S = 30  # vLLM's exit after SIGTERM: engine processes, NCCL/Ray teardown. An assumption.
DRAIN_POLL_S = 2
# The preStop: sleep, then poll vLLM's /metrics (public: its API-key check covers /v1 only) until
# vllm:num_requests_running + vllm:num_requests_waiting is 0, the server is gone, or the drain
# budget is spent. argv: sleep, budget, poll, port, and optionally the env var holding the API
# server's host (a LeaderWorkerSet worker watches its leader: LWS_LEADER_ADDRESS); else 127.0.0.1.
DRAIN_SCRIPT = """\
import os, sys, time, urllib.request
sleep, budget, poll = (float(a) for a in sys.argv[1:4])
host = os.environ.get(sys.argv[5], "127.0.0.1") if len(sys.argv) > 5 else "127.0.0.1"
url = f"http://{host}:{sys.argv[4]}/metrics"
names = ("vllm:num_requests_running", "vllm:num_requests_waiting")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
time.sleep(sleep)
end = time.monotonic() + budget
while time.monotonic() < end:
    try:
        with opener.open(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        break
    busy = 0.0
    for line in text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name in names:
            rest = line[len(name):]
            rest = rest.rsplit("}", 1)[1] if rest.startswith("{") else rest
            busy += float(rest.split()[0])
    if busy <= 0:
        break
    time.sleep(poll)
"""

# /dev/shm: vLLM's docs/deployment/k8s.md NVIDIA example uses 2Gi for one node's tensor parallelism;
# LWS's vLLM example uses 15Gi where Ray joins the nodes (its object store lives in /dev/shm).
SHM_ONE_NODE_GIB = 2
SHM_RAY_GIB = 15

# Autoscaling (production-stack tutorials/assets/keda-scaled-object.yaml): queue length,
# threshold 5 per replica, polled every 15 s, 360 s cooldown. The Prometheus address is the
# prometheus-operator's governing Service in a `monitoring` namespace: an assumption, pass yours.
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
QUEUE_THRESHOLD = 5
POLLING_INTERVAL_S = 15
COOLDOWN_S = 360

# NVIDIA GPU feature discovery labels a node `nvidia.com/gpu.product=<NVML name, spaces → '-'>`
# (NVIDIA/k8s-device-plugin docs/gpu-feature-discovery/README.md, "Generated Labels"). The
# values below are the names nvidia-smi prints for the catalog's cards. Seen in public
# manifests: NVIDIA-H100-80GB-HBM3, NVIDIA-A100-SXM4-80GB, NVIDIA-L40S, Tesla-T4; the others
# follow nvidia-smi's naming, not checked on a node: pass `gpu_product=` when yours differ
# (PCIe parts; MIG's single strategy adds a -MIG-… suffix).
GPU_PRODUCTS = {
    "rtx-3090": ("NVIDIA-GeForce-RTX-3090",),
    "rtx-4090": ("NVIDIA-GeForce-RTX-4090",),
    "t4": ("Tesla-T4",),
    "a10": ("NVIDIA-A10",),
    "l4": ("NVIDIA-L4",),
    "l40s": ("NVIDIA-L40S",),
    "a100-40gb": ("NVIDIA-A100-SXM4-40GB",),
    "a100-80gb": ("NVIDIA-A100-SXM4-80GB",),
    "h100-80gb": ("NVIDIA-H100-80GB-HBM3",),
    "h200": ("NVIDIA-H200",),
    "rtx-a6000": ("NVIDIA-RTX-A6000",),
}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
STORAGE = ("auto", "pvc", "rwx", "per-pod")


class Manifest(dict):
    """A Kubernetes object as a dict; `yaml()` writes it."""

    @property
    def kind(self) -> str:
        return self["kind"]

    @property
    def name(self) -> str:
        return self["metadata"]["name"]

    def yaml(self) -> str:
        import yaml

        class NoAliases(yaml.SafeDumper):  # shared sub-dicts are written out, not as &id anchors
            def ignore_aliases(self, data) -> bool:
                return True

        return yaml.dump(dict(self), Dumper=NoAliases, sort_keys=False, default_flow_style=False)


@dataclass(frozen=True)
class StartupBudget:
    """Seconds a pod's serving container may take before it answers /health: the startupProbe's
    window. The download before it is the init container's (`download_s`, shown, not probed)."""

    download_s: float
    load_s: float
    engine_s: float
    ray_s: float
    total_s: int  # (load + engine + Ray) × STARTUP_MARGIN, at least MIN_STARTUP_S

    @property
    def failure_threshold(self) -> int:
        return math.ceil(self.total_s / PROBE_PERIOD_S)

    def __str__(self) -> str:
        return (
            f"Init container pre-stages the weights first (about {self.download_s:.0f} s at the "
            f"assumed {DOWNLOAD_BYTES_S / 1e6:.0f} MB/s; no probe times it). startupProbe window "
            f"{self.total_s} s = max({MIN_STARTUP_S}, {STARTUP_MARGIN} × (load "
            f"{self.load_s:.0f} s + engine start {self.engine_s:.0f} s + Ray {self.ray_s:.0f} s))"
        )


def startup_budget(
    weights_bytes: int,
    pp: int = 1,
    download_bytes_s: float = DOWNLOAD_BYTES_S,
    load_bytes_s: float = LOAD_BYTES_S,
    engine_start_s: float = ENGINE_START_S,
) -> StartupBudget:
    """How long the first start may take. The init container downloads the checkpoint
    (`weights_bytes` ÷ `download_bytes_s`) before the serving container starts, so the probe's
    window holds only what follows: loading the pipeline stage's share (÷ `load_bytes_s`),
    compiling and capturing CUDA graphs (`engine_start_s`) and, across nodes, waiting for Ray."""
    download = weights_bytes / download_bytes_s
    load = weights_bytes / pp / load_bytes_s
    ray = RAY_CLUSTER_S if pp > 1 else 0
    total = max(MIN_STARTUP_S, math.ceil(STARTUP_MARGIN * (load + engine_start_s + ray)))
    return StartupBudget(download, load, float(engine_start_s), float(ray), total)


@dataclass(frozen=True)
class Shutdown:
    """The drain before SIGTERM: the preStop's sleep and drain budget, vLLM's exit after it, and
    the grace period that holds all three (see SHUTDOWN)."""

    sleep_s: int = PRESTOP_SLEEP_S
    drain_s: int = DRAIN_S
    exit_s: int = EXIT_S

    @property
    def grace_s(self) -> int:
        return self.sleep_s + self.drain_s + self.exit_s

    def prestop(self, host_env: str | None = None) -> dict:
        """The preStop hook: DRAIN_SCRIPT in exec form (no shell), on this pod's vLLM or on the
        API server whose host is in `host_env`."""
        argv = [str(self.sleep_s), str(self.drain_s), str(DRAIN_POLL_S), str(PORT)]
        cmd = ["python3", "-c", DRAIN_SCRIPT, *argv, *([host_env] if host_env else [])]
        return {"preStop": {"exec": {"command": cmd}}}

    def __str__(self) -> str:
        return (
            f"Shutdown: {SHUTDOWN}: sleep {self.sleep_s} s (endpoint removal reaches the proxies), "
            f"then wait up to {self.drain_s} s until vLLM runs and queues no request; "
            f"terminationGracePeriodSeconds {self.grace_s} = {self.sleep_s} + {self.drain_s} + "
            f"{self.exit_s} s for vLLM's exit (assumptions: pass drain_s=)."
        )


def secret_commands(name: str) -> list[str]:
    """The `kubectl create secret` lines the manifests' `secretKeyRef`s expect, values taken from
    your shell's environment (never written to a file). `kubectl create` refuses to replace an
    existing secret, so running them again never overwrites a real key."""
    app = f"vllm-{name}"
    return [
        'kubectl create secret generic hf-token --from-literal=token="$HF_TOKEN"',
        f'kubectl create secret generic {app}-api-key --from-literal=key="$VLLM_API_KEY"',
    ]


def gpu_products(gpu: str) -> tuple[str, ...]:
    """The `nvidia.com/gpu.product` values of a catalog GPU (see GPU_PRODUCTS)."""
    try:
        return GPU_PRODUCTS[gpu]
    except KeyError:
        raise InvalidSetting(
            f"No nvidia.com/gpu.product label known for GPU {gpu!r}.",
            "Pass gpu_product='<the label>' (kubectl get nodes -L nvidia.com/gpu.product).",
        ) from None


@dataclass(frozen=True)
class _Pod:
    """What every pod of the plan shares."""

    app: str
    tp: int
    pp: int
    storage: str  # pvc | rwx | per-pod
    storage_size: str
    host_mem: str
    shm_gib: int
    affinity: dict
    startup: StartupBudget
    shutdown: Shutdown
    model: str  # what the init container pre-stages: a Hub repo, or a path it checks


def manifests(
    name,
    args,
    tp,
    pp,
    replicas,
    e,
    *,
    gpu: str | None = None,
    gpu_product: str | tuple[str, ...] | None = None,
    storage: str = "auto",
    storage_class: str | None = None,
    max_replicas: int | None = None,
    prometheus_url: str = PROMETHEUS_URL,
    download_bytes_s: float = DOWNLOAD_BYTES_S,
    load_bytes_s: float = LOAD_BYTES_S,
    engine_start_s: float = ENGINE_START_S,
    drain_s: int = DRAIN_S,
) -> list[Manifest]:
    """The objects for `vllm serve <args>` with TP × PP GPUs per replica: a Deployment (one node)
    or a LeaderWorkerSet (PP nodes), its Service, a PodMonitor, a KEDA ScaledObject, a
    PodDisruptionBudget, and a PVC when the model cache is one. No Secret: run
    `secret_commands(name)` first.

    `gpu`: the catalog GPU (its `nvidia.com/gpu.product` label; else the GPU's memory label must
    hold a GPU's share); `storage`: 'pvc' (ReadWriteOnce, one pod only), 'rwx' (ReadWriteMany,
    needs `storage_class`), 'per-pod' (ephemeral storage each pod fills), 'auto' (pvc for one
    pod, else per-pod); `max_replicas`: the autoscaler's ceiling (default 4 × replicas);
    `drain_s`: how long the preStop waits for in-flight requests before SIGTERM (see SHUTDOWN)."""
    app = f"vllm-{name}"
    weights = int(e.breakdown["weights"])
    mode = _storage_mode(storage, storage_class, replicas, pp)
    weights_gib = math.ceil(weights / 2**30)
    shm = SHM_RAY_GIB if pp > 1 else SHM_ONE_NODE_GIB if tp > 1 else 0
    budget = startup_budget(weights, pp, download_bytes_s, load_bytes_s, engine_start_s)
    pod = _Pod(
        app=app,
        tp=tp,
        pp=pp,
        storage=mode,
        storage_size=f"{max(10, math.ceil(weights_gib * 1.2))}Gi",
        # the shard this pod reads + the server process + /dev/shm (tmpfs counts)
        host_mem=f"{math.ceil(weights_gib / pp) + 16 + shm}Gi",
        shm_gib=shm,
        affinity=_affinity(gpu, gpu_product, e, tp, pp),
        startup=budget,
        shutdown=Shutdown(drain_s=validate.integer("drain_s", drain_s, lo=0, hi=86400)),
        model=args[0],
    )
    objects = [_pvc(pod, storage_class)] if mode in ("pvc", "rwx") else []
    if pp == 1:
        objects.append(_deployment(pod, replicas, args))
        selector = {"app": app}
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": app}
    else:
        objects.append(_leader_worker_set(pod, replicas, args))
        selector = {"app": app, "role": "leader"}
        target = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet"}
        target["name"] = app
    objects += [
        _service(app, selector),
        _pod_monitor(app, selector),
        _scaled_object(app, target, args[0], replicas, max_replicas, prometheus_url),
        _pdb(app),
    ]
    return objects


def _storage_mode(storage, storage_class, replicas, pp) -> str:
    """pvc | rwx | per-pod, refusing a ReadWriteOnce volume that several pods would mount."""
    if storage not in STORAGE:
        raise InvalidSetting(f"storage={storage!r} is not one of {STORAGE}.", "Pick one of those.")
    pods = replicas * pp
    if storage == "auto":
        return "pvc" if pods == 1 else "per-pod"
    if storage == "pvc" and pods > 1:
        raise InvalidSetting(
            f"A ReadWriteOnce volume cannot serve {pods} pods on different nodes.",
            "Use storage='per-pod' (each pod downloads the model into ephemeral storage) or "
            "storage='rwx' with a ReadWriteMany storage class (NFS, CephFS, EFS, Filestore).",
        )
    if storage == "rwx" and not storage_class:
        raise InvalidSetting(
            "storage='rwx' needs a storage class that offers ReadWriteMany.",
            "Pass storage_class='<name>' (kubectl get storageclass; NFS, CephFS, EFS, Filestore).",
        )
    return storage


def _affinity(gpu, gpu_product, e, tp, pp) -> dict:
    """Required node affinity on GPU feature discovery's labels: the product when known, else
    a GPU memory (MiB, `nvidia.com/gpu.memory`) that holds one GPU's share of the estimate."""
    products = (gpu_product,) if isinstance(gpu_product, str) else gpu_product
    if not products and gpu:
        products = gpu_products(gpu)
    if products:
        term = {"key": "nvidia.com/gpu.product", "operator": "In", "values": list(products)}
    else:
        share_mib = math.ceil(e.peak_bytes / (tp * pp) / 2**20)
        term = {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": [str(share_mib - 1)]}
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [term]}]
            }
        }
    }


def _meta(name, **labels) -> dict:
    return {"name": name, "labels": {"app.kubernetes.io/part-of": "llamalab-deploy", **labels}}


def _pvc(pod: _Pod, storage_class) -> Manifest:
    spec = {
        "accessModes": ["ReadWriteMany" if pod.storage == "rwx" else "ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": pod.storage_size}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return Manifest(
        apiVersion="v1",
        kind="PersistentVolumeClaim",
        metadata=_meta(f"{pod.app}-models"),
        spec=spec,
    )


def _secret_env(var, secret, key) -> dict:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _container(pod: _Pod, name, command, args, serves, host_env=None) -> dict:
    """One serving or Ray container: exec-form `command`/`args`, non-root, limits, volumes, the
    Hub cache read offline (the init container filled it), the preStop drain (on this pod's API
    server, or on the one whose host is in `host_env`); the probes when it `serves` the API (a
    LeaderWorkerSet's workers only run Ray)."""
    gpus = str(pod.tp)
    requests = {"cpu": "2", "memory": pod.host_mem, "nvidia.com/gpu": gpus}
    limits = {"nvidia.com/gpu": gpus, "memory": pod.host_mem, "cpu": str(max(4, 2 * pod.tp))}
    if pod.storage == "per-pod":
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = pod.storage_size
    env = [*_cache_env(), {"name": "HF_HUB_OFFLINE", "value": "1"}]
    if serves:
        env.append(_secret_env("VLLM_API_KEY", f"{pod.app}-api-key", "key"))
    mounts = _cache_mounts()
    if pod.shm_gib:
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})
    ctr = {
        "name": name,
        "image": IMAGE,
        "command": command,
        "args": args,
        "env": env,
        "ports": [{"containerPort": PORT, "name": "http"}],
        "resources": {"limits": limits, "requests": requests},
        "volumeMounts": mounts,
        "lifecycle": pod.shutdown.prestop(host_env),
        "securityContext": _container_security(),
    }
    if serves:
        ctr.update(_probes(pod.startup))
    return ctr


def _container_security() -> dict:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _cache_env() -> list[dict]:
    """A writable HOME and the Hub cache on the models volume (non-root needs both)."""
    return [
        {"name": "HOME", "value": HOME},
        {"name": "USER", "value": "vllm"},
        {"name": "HF_HOME", "value": MODELS_PATH},
    ]


def _cache_mounts() -> list[dict]:
    return [{"name": "models", "mountPath": MODELS_PATH}, {"name": "home", "mountPath": HOME}]


def prestage(pod: _Pod) -> dict:
    """The init container: downloads `pod.model` into the pod's Hub cache with the `hf-token`
    secret (PRESTAGE_SCRIPT, exec form), or checks that a local path is on the models volume.
    It runs to completion before the serving container starts (Kubernetes init containers)."""
    cpu = "2"
    resources = {"cpu": cpu, "memory": PRESTAGE_MEMORY}
    return {
        "name": "prestage-weights",
        "image": IMAGE,
        "command": ["python3", "-c", PRESTAGE_SCRIPT, pod.model, *PRESTAGE_IGNORE],
        "env": [*_cache_env(), _secret_env("HF_TOKEN", "hf-token", "token")],
        "resources": {"limits": dict(resources), "requests": dict(resources)},
        "volumeMounts": _cache_mounts(),
        "securityContext": _container_security(),
    }


def _probes(budget: StartupBudget) -> dict:
    """startupProbe over the whole start-up window; liveness and readiness only after it."""
    health = {"path": "/health", "port": PORT}
    return {
        "startupProbe": {
            "httpGet": health,
            "periodSeconds": PROBE_PERIOD_S,
            "failureThreshold": budget.failure_threshold,
        },
        "livenessProbe": {"httpGet": health, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {"httpGet": health, "periodSeconds": 5, "failureThreshold": 3},
    }


def _pod_spec(pod: _Pod, ctr, stage: bool = True) -> dict:
    """The pod around `ctr`: the init container first when this pod must `stage` the weights,
    the grace period the preStop drain needs, volumes, security, scheduling."""
    vols = [{"name": "home", "emptyDir": {}}]
    if pod.storage == "per-pod":
        vols.append({"name": "models", "emptyDir": {"sizeLimit": pod.storage_size}})
    else:
        claim = {"claimName": f"{pod.app}-models"}
        vols.append({"name": "models", "persistentVolumeClaim": claim})
    if pod.shm_gib:
        shm = {"medium": "Memory", "sizeLimit": f"{pod.shm_gib}Gi"}
        vols.append({"name": "shm", "emptyDir": shm})
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": pod.affinity,
        "tolerations": [dict(GPU_TOLERATION)],
        "terminationGracePeriodSeconds": pod.shutdown.grace_s,
        **({"initContainers": [prestage(pod)]} if stage else {}),
        "containers": [ctr],
        "volumes": vols,
    }


def _deployment(pod: _Pod, replicas, args) -> Manifest:
    """One node: `vllm serve` in exec form, so vLLM is PID 1 and gets SIGTERM."""
    ctr = _container(pod, pod.app, ["vllm", "serve"], list(args), serves=True)
    # A ReadWriteOnce volume cannot attach to a second pod elsewhere: replace, don't surge.
    strategy = {"type": "Recreate"} if pod.storage == "pvc" else _rolling()
    return Manifest(
        apiVersion="apps/v1",
        kind="Deployment",
        metadata=_meta(pod.app, app=pod.app),
        spec={
            "replicas": replicas,
            "strategy": strategy,
            "selector": {"matchLabels": {"app": pod.app}},
            "template": {
                "metadata": {"labels": {"app": pod.app}},
                "spec": _pod_spec(pod, ctr),
            },
        },
    )


def _rolling() -> dict:
    """No surge: a new pod needs GPUs the old one holds."""
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


LEADER_SCRIPT = "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh leader"


def leader_command(args) -> str:
    """The leader's shell: start the Ray head and wait for the workers (vLLM's script), then
    `exec vllm serve`, so vLLM replaces the shell as PID 1."""
    return (
        f"{LEADER_SCRIPT} --ray_cluster_size=$(LWS_GROUP_SIZE) && "
        f"exec vllm serve {shlex.join(args)}"
    )


def worker_command() -> str:
    """A worker's shell: wait for the leader's Ray head (as LWS's vLLM example does), then
    `exec ray start --block`, so Ray, not the shell, is PID 1."""
    head = "$(LWS_LEADER_ADDRESS):6379"
    return (
        f"until ray status --address {head} >/dev/null 2>&1; do sleep 5; done; "
        f"exec ray start --address={head} --block"
    )


def _leader_worker_set(pod: _Pod, replicas, args) -> Manifest:
    leader = _container(
        pod, f"{pod.app}-leader", ["/bin/bash", "-c"], [leader_command(args)], serves=True
    )
    worker = _container(
        pod,
        f"{pod.app}-worker",
        ["/bin/bash", "-c"],
        [worker_command()],
        serves=False,
        host_env="LWS_LEADER_ADDRESS",  # Ray stays up while the leader drains
    )
    # One shared (rwx) volume: the leader's init container fills it before the leader starts
    # vLLM, which is when the workers read it; per-pod caches are each filled by their own pod.
    template = lambda ctr, role: {
        "metadata": {"labels": {"app": pod.app, "role": role}},
        "spec": _pod_spec(pod, ctr, stage=role == "leader" or pod.storage != "rwx"),
    }
    return Manifest(
        apiVersion="leaderworkerset.x-k8s.io/v1",
        kind="LeaderWorkerSet",
        metadata=_meta(pod.app),
        spec={
            "replicas": replicas,
            "leaderWorkerTemplate": {
                "size": pod.pp,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": template(leader, "leader"),
                "workerTemplate": template(worker, "worker"),
            },
        },
    )


def _service(app, selector) -> Manifest:
    return Manifest(
        apiVersion="v1",
        kind="Service",
        metadata=_meta(app, app=app),
        spec={
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
        },
    )


def _pod_monitor(app, selector) -> Manifest:
    """prometheus-operator's PodMonitor on the serving pods' named port (production-stack's
    servicemonitor-engine.yaml scrapes the engine the same way). /metrics is outside vLLM's
    API-key check. Your Prometheus must select it (its podMonitorSelector)."""
    return Manifest(
        apiVersion="monitoring.coreos.com/v1",
        kind="PodMonitor",
        metadata=_meta(f"{app}-metrics"),
        spec={
            "selector": {"matchLabels": dict(selector)},
            "podMetricsEndpoints": [
                {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
            ],
        },
    )


def queue_query(model: str) -> str:
    """The queue length summed over the model's pods: one series, as KEDA's Prometheus scaler
    requires (keda.sh docs: "query must return a vector/scalar single element response")."""
    return f'sum(vllm:num_requests_waiting{{model_name="{model}"}})'


def _scaled_object(app, target, model, replicas, max_replicas, prometheus_url) -> Manifest:
    """KEDA ScaledObject: scale on the waiting queue, `QUEUE_THRESHOLD` per replica. KEDA over an
    HPA: an HPA needs prometheus-adapter to rename vLLM's colon metric (production-stack
    observability/prom-adapter.yaml)."""
    ceiling = max_replicas if max_replicas is not None else 4 * replicas
    if ceiling < replicas:
        raise InvalidSetting(
            f"max_replicas={ceiling} is below replicas={replicas}.", "Raise max_replicas."
        )
    return Manifest(
        apiVersion="keda.sh/v1alpha1",
        kind="ScaledObject",
        metadata=_meta(f"{app}-queue"),
        spec={
            "scaleTargetRef": target,
            "minReplicaCount": replicas,
            "maxReplicaCount": ceiling,
            "pollingInterval": POLLING_INTERVAL_S,
            "cooldownPeriod": COOLDOWN_S,
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": queue_query(model),
                        "threshold": str(QUEUE_THRESHOLD),
                    },
                }
            ],
        },
    )


def _pdb(app) -> Manifest:
    """At most one serving pod evicted at a time by a drain; pods that are not ready (still
    starting, crash-looping) may always be evicted."""
    return Manifest(
        apiVersion="policy/v1",
        kind="PodDisruptionBudget",
        metadata=_meta(app),
        spec={
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app": app}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    )


# ---- offline validation --------------------------------------------------------------------------

# Custom resources: no schema is bundled with kubernetes-validate, so each is checked for the
# fields its controller requires; pod templates inside go through the core PodTemplate schema.
_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


def validate_manifests(manifests, version: str | None = None) -> list[dict]:
    """Each manifest against the Kubernetes JSON schemas bundled by `kubernetes-validate` (strict:
    unknown fields fail). Custom resources (LeaderWorkerSet, PodMonitor, ScaledObject: no bundled
    schema) are checked structurally — their required fields —, a LeaderWorkerSet's leader and
    worker pod templates against the core PodTemplate schema. One row per object: kind, name, ok,
    how, error."""
    try:
        import kubernetes_validate as kv
    except ImportError:
        from ..core.errors import BackendMissing, install_extra

        raise BackendMissing(
            "kubernetes-validate", install_extra("deploy"), "it validates the manifests"
        ) from None
    version = version or kv.latest_version()
    rows = []
    for m in manifests:
        row = {"kind": m["kind"], "name": m["metadata"]["name"], "ok": True, "error": ""}
        check = _CUSTOM.get(m["kind"])
        try:
            if check:
                row["how"] = "structural (custom resource)" + (
                    " + pod templates against PodTemplate" if m["kind"] == "LeaderWorkerSet" else ""
                )
                check(m, kv, version)
            else:
                row["how"] = f"kubernetes-validate, schemas of Kubernetes {version}, strict"
                kv.validate(dict(m), version, strict=True)
        except (kv.ValidationError, ValueError) as err:
            row["ok"], row["error"] = False, str(err).splitlines()[0]
        rows.append(row)
    return rows


def _require(kind: str, checks) -> None:
    problems = [f"{path} missing or invalid" for path, ok in checks if not ok]
    if problems:
        raise ValueError(f"{kind}: " + ", ".join(problems))


def _named(m) -> bool:
    return bool(re.fullmatch(_NAME, m.get("metadata", {}).get("name", "")))


def _check_lws(m, kv, version) -> None:
    spec = m.get("spec", {})
    lwt = spec.get("leaderWorkerTemplate", {})
    _require(
        "LeaderWorkerSet",
        (
            ("metadata.name", _named(m)),
            ("spec.replicas", isinstance(spec.get("replicas"), int)),
            (
                "spec.leaderWorkerTemplate.size",
                isinstance(lwt.get("size"), int) and lwt.get("size", 0) >= 1,
            ),
            (
                "spec.leaderWorkerTemplate.workerTemplate",
                isinstance(lwt.get("workerTemplate"), dict),
            ),
        ),
    )
    for key in ("leaderTemplate", "workerTemplate"):
        if key in lwt:
            kv.validate(
                {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": f"{m['metadata']['name']}-{key.lower()}"},
                    "template": lwt[key],
                },
                version,
                strict=True,
            )


def _check_pod_monitor(m, kv, version) -> None:
    spec = m.get("spec", {})
    endpoints = spec.get("podMetricsEndpoints")
    _require(
        "PodMonitor",
        (
            ("metadata.name", _named(m)),
            ("spec.selector", isinstance(spec.get("selector"), dict)),
            ("spec.podMetricsEndpoints", isinstance(endpoints, list) and bool(endpoints)),
            (
                "spec.podMetricsEndpoints[].port",
                all(isinstance(ep.get("port"), str) for ep in endpoints or ()),
            ),
        ),
    )


def _check_scaled_object(m, kv, version) -> None:
    spec = m.get("spec", {})
    triggers = spec.get("triggers")
    lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    _require(
        "ScaledObject",
        (
            ("metadata.name", _named(m)),
            ("spec.scaleTargetRef.name", bool(spec.get("scaleTargetRef", {}).get("name"))),
            ("spec.triggers", isinstance(triggers, list) and bool(triggers)),
            (
                "spec.triggers[].type/metadata",
                all(t.get("type") and isinstance(t.get("metadata"), dict) for t in triggers or ()),
            ),
            ("spec.minReplicaCount <= maxReplicaCount", isinstance(lo, int) and lo <= hi),
        ),
    )


_CUSTOM = {
    "LeaderWorkerSet": _check_lws,
    "PodMonitor": _check_pod_monitor,
    "ScaledObject": _check_scaled_object,
}
