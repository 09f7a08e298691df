"""Kubernetes manifests for a vLLM deployment sized by the calculator, and their offline validation.
Pure data (dicts): nothing is applied."""

from __future__ import annotations

import math
import re

PORT = 8000
IMAGE = "vllm/vllm-openai:latest"


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

        return yaml.safe_dump(dict(self), sort_keys=False, default_flow_style=False)


def manifests(name, args, tp, pp, replicas, e) -> list[Manifest]:
    """Like vLLM's Kubernetes guide: PVC for the model cache, token and API key from Secrets,
    /dev/shm for tensor parallelism, probes on /health; a LeaderWorkerSet when the model spans
    nodes."""
    app = f"vllm-{name}"
    weights_gib = math.ceil(e.breakdown["weights"] / 2**30)
    storage = f"{max(10, math.ceil(weights_gib * 1.2))}Gi"
    host_mem = (
        f"{math.ceil(weights_gib / pp) + 16}Gi"  # the shard this pod reads + the server process
    )
    delay = 60 + 2 * math.ceil(weights_gib / pp)  # big models take minutes to load
    objects = [_pvc(app, storage), _secret("hf-token", "token"), _secret(f"{app}-api-key", "key")]
    command = "vllm serve " + " ".join(args)
    if pp == 1:
        objects.append(_deployment(app, replicas, tp, host_mem, delay, command))
        objects.append(_service(app, {"app": app}))
    else:
        objects.append(_leader_worker_set(app, replicas, tp, pp, host_mem, delay, args))
        objects.append(_service(app, {"leaderworkerset.sigs.k8s.io/name": app, "role": "leader"}))
    return objects


def _meta(name, **labels) -> dict:
    return {"name": name, "labels": {"app.kubernetes.io/part-of": "llamalab-deploy", **labels}}


def _pvc(app, storage) -> Manifest:
    return Manifest(
        apiVersion="v1",
        kind="PersistentVolumeClaim",
        metadata=_meta(f"{app}-models"),
        spec={
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": storage}},
        },
    )


def _secret(name, key) -> Manifest:
    return Manifest(
        apiVersion="v1",
        kind="Secret",
        metadata=_meta(name),
        type="Opaque",
        stringData={key: "REPLACE_ME (kubectl create secret … keeps it out of files)"},
    )


def _container(name, command, tp, host_mem, delay, probes=True) -> dict:
    limits = {"nvidia.com/gpu": str(tp), "memory": host_mem, "cpu": str(max(4, 2 * tp))}
    ctr = {
        "name": name,
        "image": IMAGE,
        "command": ["/bin/sh", "-c"],
        "args": [command],
        "env": [
            {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}},
            }
        ],
        "ports": [{"containerPort": PORT, "name": "http"}],
        "resources": {
            "limits": limits,
            "requests": {"cpu": "2", "memory": host_mem, "nvidia.com/gpu": str(tp)},
        },
        "volumeMounts": [{"name": "models", "mountPath": "/root/.cache/huggingface"}],
    }
    if tp > 1:
        ctr["volumeMounts"].append({"name": "shm", "mountPath": "/dev/shm"})
    if probes:
        ctr["livenessProbe"] = {
            "httpGet": {"path": "/health", "port": PORT},
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
            "failureThreshold": 3,
        }
        ctr["readinessProbe"] = {
            "httpGet": {"path": "/health", "port": PORT},
            "initialDelaySeconds": delay // 2,
            "periodSeconds": 5,
        }
    return ctr


def _volumes(app, tp) -> list[dict]:
    vols = [{"name": "models", "persistentVolumeClaim": {"claimName": f"{app}-models"}}]
    if tp > 1:
        vols.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}})
    return vols


def _api_key_env(app) -> dict:
    return {
        "name": "VLLM_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": f"{app}-api-key", "key": "key"}},
    }


def _deployment(app, replicas, tp, host_mem, delay, command) -> Manifest:
    ctr = _container(app, command, tp, host_mem, delay)
    ctr["env"].append(_api_key_env(app))
    return Manifest(
        apiVersion="apps/v1",
        kind="Deployment",
        metadata=_meta(app, app=app),
        spec={
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [ctr], "volumes": _volumes(app, tp)},
            },
        },
    )


def _leader_worker_set(app, replicas, tp, pp, host_mem, delay, args) -> Manifest:
    script = "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh"
    leader = _container(
        f"{app}-leader",
        f"{script} leader --ray_cluster_size=$(LWS_GROUP_SIZE); vllm serve " + " ".join(args),
        tp,
        host_mem,
        delay,
    )
    leader["env"].append(_api_key_env(app))
    worker = _container(
        f"{app}-worker",
        f"{script} worker --ray_address=$(LWS_LEADER_ADDRESS)",
        tp,
        host_mem,
        delay,
        probes=False,
    )
    pod = lambda ctr: {"spec": {"containers": [ctr], "volumes": _volumes(app, tp)}}
    return Manifest(
        apiVersion="leaderworkerset.x-k8s.io/v1",
        kind="LeaderWorkerSet",
        metadata=_meta(app),
        spec={
            "replicas": replicas,
            "leaderWorkerTemplate": {
                "size": pp,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {"metadata": {"labels": {"role": "leader"}}, **pod(leader)},
                "workerTemplate": pod(worker),
            },
        },
    )


def _service(app, selector) -> Manifest:
    return Manifest(
        apiVersion="v1",
        kind="Service",
        metadata=_meta(app),
        spec={
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
        },
    )


# ---- offline validation --------------------------------------------------------------------------


def validate_manifests(manifests, version: str | None = None) -> list[dict]:
    """Each manifest against the Kubernetes JSON schemas bundled by `kubernetes-validate` (strict:
    unknown fields fail). A LeaderWorkerSet (a custom resource, no bundled schema) is checked
    structurally — its required fields — and its leader and worker pod templates against the core
    PodTemplate schema. Returns one row per object: kind, name, ok, how, error."""
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
        try:
            if m["kind"] == "LeaderWorkerSet":
                row["how"] = "structural (custom resource) + pod templates against PodTemplate"
                _check_lws(m, kv, version)
            else:
                row["how"] = f"kubernetes-validate, schemas of Kubernetes {version}, strict"
                kv.validate(dict(m), version, strict=True)
        except (kv.ValidationError, ValueError) as err:
            row["ok"], row["error"] = False, str(err).splitlines()[0]
        rows.append(row)
    return rows


def _check_lws(m, kv, version) -> None:
    spec = m.get("spec", {})
    lwt = spec.get("leaderWorkerTemplate", {})
    problems = [
        f"{path} missing"
        for path, ok in (
            (
                "metadata.name",
                bool(
                    re.fullmatch(
                        r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", m.get("metadata", {}).get("name", "")
                    )
                ),
            ),
            ("spec.replicas", isinstance(spec.get("replicas"), int)),
            (
                "spec.leaderWorkerTemplate.size",
                isinstance(lwt.get("size"), int) and lwt.get("size", 0) >= 1,
            ),
            (
                "spec.leaderWorkerTemplate.workerTemplate",
                isinstance(lwt.get("workerTemplate"), dict),
            ),
        )
        if not ok
    ]
    if problems:
        raise ValueError("LeaderWorkerSet: " + ", ".join(problems))
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
