"""Cross-check llamalab.load_test against an established load tester, guidellm, on the same local
llama.cpp server (`llamalab.serve()`), in both modes: a fixed concurrency (closed loop) and a
Poisson arrival rate (open loop). Run order per mode: the kit, guidellm, the kit again (the machine
is shared: drift shows as a gap between the kit's two runs); load averages before and after each.

Same work on both sides:
- the server runs with `prompt_cache=False` (llama.cpp's --no-cache-prompt): no request reuses
  another's KV, not even the chat template's system part (with the cache on, llama.cpp's
  `prompt_tokens_total` counts only the tokens it pre-filled and `prompt_tokens_cached_total` the
  reused ones, ~24 per request here: the template);
- prompts of the same length: guidellm's synthetic text has exactly --prompt-tokens tokens by the
  model's tokenizer, the kit's distinct word prompts are cut to exactly that many by the same
  tokenizer; the chat template is applied by the server for both;
- exactly --tokens output tokens (both set ignore_eos).
The server's /metrics counters are read around every run and stored per run (`server`): prompt
tokens processed and cached, output tokens; equal per-request counts show equal prefill work.

Rate mode: guidellm 0.8.1 seeds every worker process's generator with the same seed, so with its
default 10 worker processes each exponential gap is drawn once and repeated ~10 times (16 requests
were spaced by 2 distinct gaps: its achieved rate then hangs on two draws). It runs with one worker
process (GUIDELLM__MAX_WORKER_PROCESSES=1) in rate mode, which makes its schedule a Poisson process;
the kit draws its own (numpy, a seed per run). The draws differ, so only quantities that do not
depend on them are compared, over --rate-requests requests at a rate below the server's capacity.

Each quantity, per tool, from per-request records (kit: `LoadTestResult.records`; guidellm: its
JSON report's `requests.successful`), p50 = the median:
- ttft_send_p50_ms: send → first streamed content token. kit: `ttft_s − send_delay_s` (from the
  `generate()` call, TCP connect included); guidellm: `first_token_iteration − request_start`
  (request_start: its request headers start to be written, connect excluded). The ratio uses it.
- ttft_sched_p50_ms: scheduled send → first token. kit: `ttft_s` (its own TTFT); guidellm:
  `first_token_iteration − targeted_start`.
- send_delay_p50_ms: the real send − the scheduled one (kit: `send_delay_s`; guidellm:
  `request_start − targeted_start`).
- itl_p50_ms, itl_mean_ms (TPOT without the first token, vLLM's TPOT and guidellm's ITL):
  (last token − first token) ÷ (output tokens − 1). kit: sum(`itl_s`) ÷ (`output_tokens` − 1);
  guidellm: `inter_token_latency_ms`. The kit's own `tpot_p50_ms` (to the stream's end, vLLM) too.
- output_tokens_per_request, prompt_tokens_per_request: means of the server's usage counts.
- arrival_rate: (requests − 1) ÷ (last scheduled send − first scheduled send): n requests have
  n − 1 gaps. kit: `scheduled_s`; guidellm: `targeted_start`.
- output_tok_s: Σ output tokens ÷ (first scheduled send → last completion). kit: its summary's
  `output_throughput` (the same definition); guidellm: from `targeted_start` and `request_end`.
- output_tok_s_per_arrival (rate mode): output_tok_s ÷ arrival_rate (output tokens per request
  and the share of the span the tail adds: a throughput that does not depend on the draw).
Ratios are kit (mean of its two runs) ÷ guidellm. guidellm pins its own dependencies, so it lives
in its own venv and runs as a subprocess:

    python3 -m venv .venv-loadtester && .venv-loadtester/bin/pip install guidellm
    python benchmarks/loadtest_crosscheck.py --mode both

(`--guidellm PATH` or LLAMALAB_GUIDELLM names a guidellm elsewhere.) The API key reaches guidellm
in a scenario file (mode 0600, deleted after), never on its command line. Writes
benchmarks/results/loadtest_crosscheck.json: every run of a mode with its conditions (--runs N: N
runs of each mode; --append: added to the runs already there).
Numbers are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from itertools import pairwise
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import llamalab
from llamalab import load_test, serve
from llamalab.serving.server import gguf_for

ROOT = Path(__file__).resolve().parent.parent
GUIDELLM = Path(os.environ.get("LLAMALAB_GUIDELLM", ROOT / ".venv-loadtester" / "bin" / "guidellm"))
WORDS = (  # noqa: SIM905 (one readable string)
    "time year people way day man thing woman life child world school state family student group "
    "country problem hand part place case week company system program question work government "
    "number night point home water room mother area money story fact month lot right study book "
    "eye job word business issue side kind head house service friend father power hour game line "
    "end member law car city community name president team minute idea kid body information back"
).split()
COUNTERS = (  # llama.cpp's /metrics, without the `llamacpp:` prefix
    "prompt_tokens_total",
    "prompt_tokens_cached_total",
    "tokens_predicted_total",
    "prompt_seconds_total",
    "tokens_predicted_seconds_total",
)


def guidellm(exe: Path, server, tokenizer: Path, profile: dict, a, seed: int) -> dict:
    """Run guidellm once with `profile` (its scenario's: {"kind": "concurrent", "streams": [c]} or
    {"kind": "poisson", "rate": [r]}); return its JSON report and wall time."""
    requests = a.rate_requests if profile["kind"] == "poisson" else a.requests
    with tempfile.TemporaryDirectory(prefix="guidellm-") as tmp:
        scenario = Path(tmp) / "scenario.json"
        spec = {
            "backend": {
                "kind": "openai_http",
                "target": server.url,
                "model": str(tokenizer),
                "api_key": server.api_key,
                "request_format": "/v1/chat/completions",
                "timeout": 300,
            },
            "profile": profile,
            "data": [
                {
                    "kind": "synthetic_text",
                    "prompt_tokens": a.prompt_tokens,
                    "output_tokens": a.tokens,
                }
            ],
            "constraints": [{"kind": "max_requests", "count": requests}],
            "outputs": [{"kind": "json", "path": str(Path(tmp) / "report.json")}],
            "seed": {"kind": "static", "value": seed},  # its prompts and arrivals
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
        if profile["kind"] == "poisson":
            env["GUIDELLM__MAX_WORKER_PROCESSES"] = "1"  # one generator: a real Poisson process
        t0 = time.perf_counter()
        r = subprocess.run(
            [str(exe), "run", "--scenario", str(scenario), "--disable-console-interactive"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        wall = time.perf_counter() - t0
        reports = [p for p in Path(tmp).rglob("*.json") if p.name != "scenario.json"]
        if r.returncode != 0 or not reports:
            raise RuntimeError(
                f"guidellm failed ({r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}"
            )
        report = json.loads(reports[0].read_text())
    return {"raw": report, "wall_s": wall}


def distinct_prompts(n: int, tokens: int, tokenizer, seed: int) -> list[str]:
    """`n` different prompts of exactly `tokens` tokens by the model's tokenizer (as guidellm's
    synthetic ones), each starting with its own number."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = f"{seed}-{i} " + " ".join(rng.choice(WORDS) for _ in range(2 * tokens))
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:tokens]
        out.append(tokenizer.decode(ids))
    return out


def _children_cpu() -> float:
    """CPU seconds of this process's ended children (guidellm and its worker processes)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def median(values) -> float:
    values = [v for v in values if v is not None and v == v]
    return statistics.median(values) if values else float("nan")


def server_counters(server) -> dict[str, float]:
    m = server.metrics()
    return {k: m.get(f"llamacpp:{k}", 0.0) for k in COUNTERS}


def measured_on_server(server, run) -> tuple[dict, dict]:
    """`run()`'s result and the server's counters over it, with load averages around it."""
    load0, before = os.getloadavg(), server_counters(server)
    result = run()
    after = server_counters(server)
    return result, {
        **{k: after[k] - before[k] for k in COUNTERS},
        "load_avg_before": load0,
        "load_avg_after": os.getloadavg(),
    }


def with_server(stats: dict, server_delta: dict) -> dict:
    n = stats["requests"]
    stats["server"] = server_delta | {
        "prompt_tokens_per_request": (
            server_delta["prompt_tokens_total"] + server_delta["prompt_tokens_cached_total"]
        )
        / n,
        "cached_per_request": server_delta["prompt_tokens_cached_total"] / n,
        # the server's own clock: prefill per request, and decode per token after the first
        # (llama.cpp times each request's generation from its first sampled token)
        "prefill_ms_per_request": 1e3 * server_delta["prompt_seconds_total"] / n,
        "decode_ms_per_token": 1e3
        * server_delta["tokens_predicted_seconds_total"]
        / max(server_delta["tokens_predicted_total"] - n, 1),
    }
    return stats


def kit_run(server, prompts: list[str], mode: str, a, seed: int) -> dict:
    """One kit run on `prompts` (already distinct and sized), measured from the first request
    (no warm-up, as guidellm's max_requests runs); `seed` draws its Poisson arrivals."""
    import psutil

    cpu0 = sum(psutil.Process().cpu_times()[:2])
    level = {"concurrency": [a.concurrency]} if mode == "concurrency" else {"rate": [a.rate]}
    r, server_delta = measured_on_server(
        server,
        lambda: load_test(
            server,
            prompts,
            requests=len(prompts),
            max_new_tokens=a.tokens,
            distinct_prompts=False,
            warmup_s=0,
            max_duration_s=900,
            timeout=300,
            seed=seed,
            **level,
        ),
    )
    k, rec = r.summary.iloc[0], r.records[r.records["ok"]]
    itl = [sum(g) / (n - 1) for g, n in zip(rec["itl_s"], rec["output_tokens"]) if n > 1]
    sent = sorted(r.records["scheduled_s"])
    stats = {
        "requests": int(k["requests"]),
        "completed": int(k["completed"]),
        "ttft_send_p50_ms": 1e3 * median(rec["ttft_s"] - rec["send_delay_s"]),
        "ttft_sched_p50_ms": 1e3 * k["ttft_p50_s"],
        "send_delay_p50_ms": 1e3 * k["send_delay_p50_s"],
        "itl_p50_ms": 1e3 * median(itl),
        "itl_mean_ms": 1e3 * statistics.fmean(itl),
        "tpot_p50_ms": 1e3 * k["tpot_p50_s"],
        "output_tokens_per_request": float(rec["output_tokens"].mean()),
        "prompt_tokens_per_request": float(rec["prompt_tokens"].mean()),
        "arrival_rate": (len(sent) - 1) / (sent[-1] - sent[0]) if sent[-1] > sent[0] else None,
        "output_tok_s": float(k["output_throughput"]),
        "client_cpu_s": sum(psutil.Process().cpu_times()[:2]) - cpu0,
    }
    return with_server(stats, server_delta)


def summarize_guidellm(report: dict) -> dict:
    """The same quantities from guidellm's per-request records (see the module docstring), and its
    own summary's medians for reference."""
    b = report["benchmarks"][0]
    reqs = b["requests"]["successful"]
    t = [r["info"]["timings"] for r in reqs]
    targeted = sorted(x["targeted_start"] for x in t)
    out_tokens = [r["output_tokens"] for r in reqs]
    stats = {
        "requests": len(reqs)
        + sum(len(b["requests"].get(k) or []) for k in ("errored", "incomplete")),
        "completed": len(reqs),
        "ttft_send_p50_ms": median(r["time_to_first_token_ms"] for r in reqs),
        "ttft_sched_p50_ms": 1e3
        * median(x["first_token_iteration"] - x["targeted_start"] for x in t),
        "send_delay_p50_ms": 1e3 * median(x["request_start"] - x["targeted_start"] for x in t),
        "itl_p50_ms": median(r["inter_token_latency_ms"] for r in reqs),
        "itl_mean_ms": statistics.fmean(r["inter_token_latency_ms"] for r in reqs),
        "tpot_incl_first_p50_ms": median(r["time_per_output_token_ms"] for r in reqs),
        "output_tokens_per_request": sum(out_tokens) / len(reqs),
        "prompt_tokens_per_request": sum(r["prompt_tokens"] for r in reqs) / len(reqs),
        "arrival_rate": (len(targeted) - 1) / (targeted[-1] - targeted[0])
        if targeted[-1] > targeted[0]
        else None,
        "output_tok_s": sum(out_tokens) / (max(x["request_end"] for x in t) - targeted[0]),
        "gaps_distinct": len({round(y - x, 6) for x, y in pairwise(targeted)}),
        "own_summary_median": {
            k: ((b["metrics"].get(k) or {}).get("successful") or {}).get("median")
            for k in (
                "time_to_first_token_ms",
                "inter_token_latency_ms",
                "time_per_output_token_ms",
            )
        },
    }
    return stats


def crosscheck(server, tokenizer, mode: str, a, prompts: list[list[str]], seed: int) -> dict:
    """The kit, guidellm, the kit again, in one mode; the kit's mean over guidellm's."""
    profile = (
        {"kind": "concurrent", "streams": [a.concurrency]}
        if mode == "concurrency"
        else {"kind": "poisson", "rate": [a.rate]}
    )
    kit1 = kit_run(server, prompts[0], mode, a, 2 * seed)
    cpu0 = _children_cpu()
    g, g_server = measured_on_server(
        server, lambda: guidellm(a.guidellm, server, tokenizer, profile, a, seed)
    )
    cpu = _children_cpu() - cpu0
    kit2 = kit_run(server, prompts[1], mode, a, 2 * seed + 1)
    gl = with_server(summarize_guidellm(g["raw"]), g_server)
    gl |= {"wall_s": g["wall_s"], "client_cpu_s": cpu}
    keys = ["ttft_send_p50_ms", "ttft_sched_p50_ms", "itl_p50_ms", "output_tok_s"]
    if mode == "rate":
        for s in (kit1, kit2, gl):
            s["output_tok_s_per_arrival"] = s["output_tok_s"] / s["arrival_rate"]
        keys.append("output_tok_s_per_arrival")
    ratios = {k: (kit1[k] + kit2[k]) / 2 / gl[k] for k in keys}
    return {"profile": profile, "kit": [kit1, kit2], "guidellm": gl, "kit_over_guidellm": ratios}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["concurrency", "rate", "both"], default="both")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--requests", type=int, default=24, help="per run, concurrency mode")
    ap.add_argument("--rate", type=float, default=0.2, help="Poisson requests/s (rate mode)")
    ap.add_argument("--rate-requests", type=int, default=40, help="per run, rate mode")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1, help="repeat each mode this many times")
    ap.add_argument("--append", action="store_true", help="add the runs to the existing file's")
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
    from transformers import AutoTokenizer

    tokenizer_dir = llamalab.model_files("default")
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    gguf, _, _ = gguf_for("default", "q4_k_m")
    modes = ["concurrency", "rate"] if a.mode == "both" else [a.mode]
    out_path = Path(a.out)
    old = json.loads(out_path.read_text()) if a.append and out_path.exists() else {}
    out = {
        "server": "llamalab.serve(prompt_cache=False), the default model's q4_k_m GGUF, "
        f"parallel={max(8, a.concurrency)}, context=512, threads={a.threads}",
        "note": "shared 2-core VM; per mode the kit ran before and after guidellm",
        "runs": [run_conditions(r, old.get("conditions", {})) for r in old.get("runs", [])],
    }
    seed = len(out["runs"]) * 10
    with serve(
        gguf, parallel=max(8, a.concurrency), context=512, threads=a.threads, prompt_cache=False
    ) as server:
        for _ in range(a.runs):
            for mode in modes:
                n = a.requests if mode == "concurrency" else a.rate_requests
                seed += 1
                prompts = [distinct_prompts(n, a.prompt_tokens, tok, seed * 2 + j) for j in (0, 1)]
                started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                result = crosscheck(server, tokenizer_dir, mode, a, prompts, seed)
                run = {"mode": mode, "started": started, **result}
                out["runs"].append(run_conditions(run, vars(a)))
                print(mode, json.dumps(result["kit_over_guidellm"]), flush=True)
                out_path.parent.mkdir(parents=True, exist_ok=True)
                out_path.write_text(json.dumps(out, indent=2, default=str))


def run_conditions(run: dict, args: dict) -> dict:
    """`run` with the arguments that shaped it (those of its mode), unless it has them."""
    keys = ["tokens", "prompt_tokens", "threads", "guidellm"] + (
        ["concurrency", "requests"] if run["mode"] == "concurrency" else ["rate", "rate_requests"]
    )
    conditions = run.get("conditions") or {
        k: str(args[k]) if k == "guidellm" else args[k] for k in keys
    }
    return {"mode": run["mode"], "conditions": conditions} | run


if __name__ == "__main__":
    main()
