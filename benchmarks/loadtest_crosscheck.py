"""Cross-check llamalab.load_test against an established load tester, guidellm, on the same local
server.

Both send streaming chat requests at the same fixed concurrency, with distinct prompts of ~the same
length (no shared prefix: llama.cpp's prompt cache would otherwise skip the prefill) and exactly
--tokens output tokens (both set ignore_eos); the kit's TTFT p50 and output-token throughput should
agree with guidellm's within 10 %. guidellm pins its own dependencies (and pulls CUDA torch), so it
lives in its own venv, run as a subprocess:

    python3 -m venv .venv-loadtester && .venv-loadtester/bin/pip install guidellm
    python benchmarks/loadtest_crosscheck.py --concurrency 4 --requests 16 --tokens 32

The API key reaches guidellm in a scenario file (mode 0600, deleted after), never on its command
line. Writes benchmarks/results/loadtest_crosscheck.json. Numbers are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import llamalab
from llamalab import load_test, serve
from llamalab.serving.server import gguf_for

ROOT = Path(__file__).resolve().parent.parent
GUIDELLM = ROOT / ".venv-loadtester" / "bin" / "guidellm"


def guidellm(
    server, tokenizer: Path, concurrency: int, requests: int, prompt_tokens: int, tokens: int
) -> dict:
    """Run guidellm once; return its TTFT p50 (s) and output tokens/s from its JSON report."""
    with tempfile.TemporaryDirectory(prefix="guidellm-") as tmp:
        scenario = Path(tmp) / "scenario.json"
        spec = {
            "backend": {
                "kind": "openai_http",
                "target": server.url,
                "model": str(tokenizer),
                "api_key": server.api_key,
                "request_format": "/v1/chat/completions",
                "timeout": 120,
            },
            "profile": {"kind": "concurrent", "streams": [concurrency]},
            "data": [
                {"kind": "synthetic_text", "prompt_tokens": prompt_tokens, "output_tokens": tokens}
            ],
            "constraints": [{"kind": "max_requests", "count": requests}],
            "outputs": [{"kind": "json", "path": str(Path(tmp) / "report.json")}],
        }
        fd = os.open(scenario, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"metadata": {"name": "llamalab-crosscheck"}, "spec": spec}, f)
        env = {
            **os.environ,
            "GUIDELLM__LOGGING__LOG_FILE": str(Path(tmp) / "guidellm.log"),
            "GUIDELLM__DEFAULT_RESULTS_DIR": tmp,
            "HF_HUB_OFFLINE": "1",
        }
        t0 = time.perf_counter()
        r = subprocess.run(
            [str(GUIDELLM), "run", "--scenario", str(scenario), "--disable-console-interactive"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        wall = time.perf_counter() - t0
        reports = list(Path(tmp).rglob("*.json"))
        reports = [p for p in reports if p.name != "scenario.json"]
        if r.returncode != 0 or not reports:
            raise RuntimeError(
                f"guidellm failed ({r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}"
            )
        report = json.loads(reports[0].read_text())
    return {"raw": report, "wall_s": wall, "stdout_tail": r.stdout[-2000:]}


def distinct_prompts(n: int, tokens: int, seed: int = 0) -> list[str]:
    """`n` different prompts of ~`tokens` words: like guidellm's synthetic data, no two share a
    prefix, so llama.cpp's prompt cache cannot skip their prefill (one repeated prompt made the
    kit's TTFT 4-5x lower)."""
    import random

    words = [
        "time",
        "year",
        "people",
        "way",
        "day",
        "man",
        "thing",
        "woman",
        "life",
        "child",
        "world",
        "school",
        "state",
        "family",
        "student",
        "group",
        "country",
        "problem",
        "hand",
        "part",
        "place",
        "case",
        "week",
        "company",
        "system",
        "program",
        "question",
        "work",
        "government",
        "number",
        "night",
        "point",
        "home",
        "water",
        "room",
        "mother",
        "area",
        "money",
        "story",
        "fact",
        "month",
        "lot",
        "right",
        "study",
        "book",
        "eye",
        "job",
        "word",
        "business",
        "issue",
        "side",
        "kind",
        "head",
        "house",
        "service",
        "friend",
        "father",
        "power",
        "hour",
        "game",
        "line",
        "end",
        "member",
        "law",
        "car",
        "city",
        "community",
        "name",
        "president",
        "team",
        "minute",
        "idea",
        "kid",
        "body",
        "information",
        "back",
        "parent",
        "face",
        "others",
        "level",
    ]
    rng = random.Random(seed)
    return [f"{i} " + " ".join(rng.choice(words) for _ in range(tokens)) for i in range(n)]


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def summarize_guidellm(report: dict) -> dict:
    """TTFT p50 and aggregate output tokens/s from guidellm's report: its own summary where present,
    and recomputed from its per-request records (sum of output tokens ÷ first start → last end)."""
    b = report["benchmarks"][0]
    reqs = b["requests"]["successful"]
    ttft = sorted(
        r["time_to_first_token_ms"] for r in reqs if r.get("time_to_first_token_ms") is not None
    )
    starts = [v for r in reqs for p, v in find(r, "request_start_time")[:1]]
    ends = [v for r in reqs for p, v in find(r, "request_end_time")[:1]]
    tokens = [v for r in reqs for p, v in find(r, "output_tokens")[:1]]
    out = {
        "requests": len(reqs),
        "ttft_p50_ms": ttft[len(ttft) // 2]
        if len(ttft) % 2
        else (ttft[len(ttft) // 2 - 1] + ttft[len(ttft) // 2]) / 2,
        "own_summary": {
            k: (b["metrics"].get(k) or {}).get("successful")
            for k in (
                "time_to_first_token_ms",
                "output_tokens_per_second",
                "time_per_output_token_ms",
            )
        },
    }
    if starts and ends and tokens:
        out["output_tok_s"] = sum(tokens) / (max(ends) - min(starts))
        out["output_tokens_per_request"] = sum(tokens) / len(tokens)
    for summary in out["own_summary"].values():
        if isinstance(summary, dict):
            for key in ("pdf", "percentile_cis", "mean_ci"):
                summary.pop(key, None)
    return out


def find(node, key: str, prefix: str = "") -> list[tuple[str, object]]:
    """Every (path, value) whose last key is `key`: guidellm's fields, whatever its version."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{prefix}.{k}" if prefix else k
            if k == key:
                out.append((p, v))
            out += find(v, key, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += find(v, key, f"{prefix}[{i}]")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "loadtest_crosscheck.json")
    )
    a = ap.parse_args()
    if not GUIDELLM.exists():
        raise SystemExit(
            f"{GUIDELLM} is missing: python3 -m venv .venv-loadtester && "
            ".venv-loadtester/bin/pip install guidellm"
        )
    tokenizer = llamalab.model_files("default")
    gguf, _, _ = gguf_for("default", "q4_k_m")
    prompts = distinct_prompts(2 * a.requests, a.prompt_tokens)
    with serve(gguf, parallel=max(8, a.concurrency), context=512, threads=a.threads) as server:
        kit1 = load_test(
            server,
            prompts[: a.requests],
            concurrency=[a.concurrency],
            requests=a.requests,
            max_new_tokens=a.tokens,
        )
        before, cpu0 = server.metrics(), _children_cpu()
        g = guidellm(server, tokenizer, a.concurrency, a.requests, a.prompt_tokens, a.tokens)
        after, cpu = server.metrics(), _children_cpu() - cpu0
        kit2 = load_test(
            server,
            prompts[a.requests :],
            concurrency=[a.concurrency],
            requests=a.requests,
            max_new_tokens=a.tokens,
        )
    ks = [k.summary.iloc[0] for k in (kit1, kit2)]
    gl = summarize_guidellm(g["raw"])
    kit = [
        {
            "ttft_p50_ms": 1e3 * k["ttft_p50_s"],
            "output_tok_s": k["output_throughput"],
            "prompt_tokens": float(kk.records["prompt_tokens"].mean()),
        }
        for k, kk in zip(ks, (kit1, kit2))
    ]
    mid = {k: (kit[0][k] + kit[1][k]) / 2 for k in ("ttft_p50_ms", "output_tok_s")}
    out = {
        "conditions": vars(a)
        | {
            "load_avg": os.getloadavg(),
            "note": "shared 2-core VM; the kit ran before and after guidellm",
        },
        "kit": kit,
        "guidellm": gl,
        "guidellm_wall_s": g["wall_s"],
        "guidellm_cpu_s": cpu,
        "server_during_guidellm": {
            k.split(":")[1]: after[k] - before.get(k, 0) for k in after if k.endswith("_total")
        },
        "kit_server_side": [
            {
                "server_prompt_s_per_request": k.get("server_prompt_s", float("nan"))
                / k["requests"],
                "server_decode_s": k.get("server_decode_s"),
            }
            for k in ks
        ],
        "kit_over_guidellm": {
            "ttft_p50": mid["ttft_p50_ms"] / gl["ttft_p50_ms"],
            "output_tok_s": mid["output_tok_s"] / gl["output_tok_s"],
        },
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
