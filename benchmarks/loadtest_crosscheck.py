"""Cross-check llamalab.load_test against an established load tester, guidellm, on the same local
server, in both modes: a fixed concurrency (closed loop) and a Poisson arrival rate (open loop).

Both send streaming chat requests with distinct prompts of ~the same length (no shared prefix:
llama.cpp's prompt cache would otherwise skip the prefill) and exactly --tokens output tokens (both
set ignore_eos); the kit runs before and after guidellm, and its TTFT p50 and output-token
throughput (mean of its two runs) should agree with guidellm's within 10 %. In rate mode both draw
Poisson arrivals (different generators, so different send times) at --rate, below the server's
capacity, where either tool's send time is its scheduled one. guidellm pins its own dependencies,
so it lives in its own venv, run as a subprocess (the CPU torch wheel keeps it small):

    python3 -m venv .venv-loadtester && .venv-loadtester/bin/pip install guidellm
    python benchmarks/loadtest_crosscheck.py --mode both --concurrency 4 --rate 0.5 --requests 16

(`--guidellm PATH` or LLAMALAB_GUIDELLM names a guidellm elsewhere.) The API key reaches guidellm
in a scenario file (mode 0600, deleted after), never on its command line. Writes
benchmarks/results/loadtest_crosscheck.json. Numbers are never asserted.
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
GUIDELLM = Path(os.environ.get("LLAMALAB_GUIDELLM", ROOT / ".venv-loadtester" / "bin" / "guidellm"))


def guidellm(
    exe: Path,
    server,
    tokenizer: Path,
    profile: dict,
    requests: int,
    prompt_tokens: int,
    tokens: int,
    seed: int = 42,
) -> dict:
    """Run guidellm once with `profile` (its scenario's: {"kind": "concurrent", "streams": [c]} or
    {"kind": "poisson", "rate": [r]}); return its JSON report."""
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
            "profile": profile,
            "data": [
                {"kind": "synthetic_text", "prompt_tokens": prompt_tokens, "output_tokens": tokens}
            ],
            "constraints": [{"kind": "max_requests", "count": requests}],
            "outputs": [{"kind": "json", "path": str(Path(tmp) / "report.json")}],
            # its synthetic prompts and arrivals: a new seed per run, or a second run repeats the
            # first one's prompts and llama.cpp's prompt cache skips their prefill
            "seed": {"kind": "static", "value": seed},
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
            [str(exe), "run", "--scenario", str(scenario), "--disable-console-interactive"],
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
    targeted = [v for r in reqs for p, v in find(r, "targeted_start")[:1]]
    if targeted and len(targeted) == len(starts) and None not in targeted:
        delays = sorted(s - t for s, t in zip(starts, targeted) if s is not None)
        out["send_delay_p50_ms"] = 1e3 * delays[len(delays) // 2]
    sent = sorted(t for t in (targeted if targeted and None not in targeted else starts))
    if len(sent) > 1 and sent[-1] > sent[0]:
        out["arrival_rate"] = (len(sent) - 1) / (sent[-1] - sent[0])
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


def kit_run(server, prompts: list[str], mode: str, a) -> dict:
    """One kit run on `prompts` (already distinct: no tag added), measured from the first request
    (no warm-up, as guidellm's max_requests runs)."""
    level = {"concurrency": [a.concurrency]} if mode == "concurrency" else {"rate": [a.rate]}
    r = load_test(
        server,
        prompts,
        requests=a.requests,
        max_new_tokens=a.tokens,
        distinct_prompts=False,
        warmup_s=0,
        max_duration_s=600,
        timeout=300,
        **level,
    )
    k = r.summary.iloc[0]
    sent = sorted(r.records["scheduled_s"])
    return {
        "arrival_rate": (len(sent) - 1) / (sent[-1] - sent[0]) if sent[-1] > sent[0] else None,
        "ttft_p50_ms": 1e3 * k["ttft_p50_s"],
        "output_tok_s": k["output_throughput"],
        "prompt_tokens": float(r.records["prompt_tokens"].mean()),
        "completed": int(k["completed"]),
        "requests": int(k["requests"]),
        "send_delay_p50_ms": 1e3 * k["send_delay_p50_s"],
        "server_prompt_s_per_request": k.get("server_prompt_s", float("nan")) / k["requests"],
        "server_decode_s": k.get("server_decode_s"),
    }


def crosscheck(server, tokenizer: Path, mode: str, a, prompts: list[str]) -> dict:
    """The kit, guidellm, the kit again, in one mode; the kit's mean over guidellm's."""
    profile = (
        {"kind": "concurrent", "streams": [a.concurrency]}
        if mode == "concurrency"
        else {"kind": "poisson", "rate": [a.rate]}
    )
    kit1 = kit_run(server, prompts[: a.requests], mode, a)
    before, cpu0 = server.metrics(), _children_cpu()
    seed = 1 + ["concurrency", "rate"].index(mode)
    g = guidellm(
        a.guidellm, server, tokenizer, profile, a.requests, a.prompt_tokens, a.tokens, seed
    )
    after, cpu = server.metrics(), _children_cpu() - cpu0
    kit2 = kit_run(server, prompts[a.requests :], mode, a)
    gl = summarize_guidellm(g["raw"])
    mid = {k: (kit1[k] + kit2[k]) / 2 for k in ("ttft_p50_ms", "output_tok_s")}
    ratios = {
        "ttft_p50": mid["ttft_p50_ms"] / gl["ttft_p50_ms"],
        "output_tok_s": mid["output_tok_s"] / gl["output_tok_s"],
    }
    if mode == "rate":
        # each tool draws its own Poisson arrivals: over few requests their realized rates differ
        # by tens of %, and below capacity throughput follows the realized rate
        served = [k["output_tok_s"] / (k["arrival_rate"] * a.tokens) for k in (kit1, kit2)]
        ratios["output_tok_s_per_arrival"] = (sum(served) / 2) / (
            gl["output_tok_s"] / (gl["arrival_rate"] * a.tokens)
        )
    return {
        "profile": profile,
        "kit": [kit1, kit2],
        "guidellm": gl,
        "guidellm_wall_s": g["wall_s"],
        "guidellm_cpu_s": cpu,
        "server_during_guidellm": {
            k.split(":")[1]: after[k] - before.get(k, 0) for k in after if k.endswith("_total")
        },
        "kit_over_guidellm": ratios,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["concurrency", "rate", "both"], default="both")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rate", type=float, default=0.5, help="Poisson requests/s (rate mode)")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--guidellm", type=Path, default=GUIDELLM)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "loadtest_crosscheck.json")
    )
    a = ap.parse_args()
    if not a.guidellm.exists():
        raise SystemExit(
            f"{a.guidellm} is missing: python3 -m venv .venv-loadtester && "
            ".venv-loadtester/bin/pip install guidellm (or pass --guidellm PATH)"
        )
    tokenizer = llamalab.model_files("default")
    gguf, _, _ = gguf_for("default", "q4_k_m")
    modes = ["concurrency", "rate"] if a.mode == "both" else [a.mode]
    prompts = distinct_prompts(2 * a.requests * len(modes), a.prompt_tokens)
    out = {
        "conditions": vars(a)
        | {
            "guidellm": str(a.guidellm),
            "load_avg_before": os.getloadavg(),
            "note": "shared 2-core VM; in each mode the kit ran before and after guidellm",
        }
    }
    with serve(gguf, parallel=max(8, a.concurrency), context=512, threads=a.threads) as server:
        for n, mode in enumerate(modes):
            chunk = prompts[2 * a.requests * n : 2 * a.requests * (n + 1)]
            out[mode] = crosscheck(server, tokenizer, mode, a, chunk)
    out["conditions"]["load_avg_after"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps({m: out[m]["kit_over_guidellm"] for m in modes}, indent=2))


if __name__ == "__main__":
    main()
