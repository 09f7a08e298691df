"""Every vLLM command the deployment plans write, parsed by vLLM's own argument parser (issue 19):
`vllm serve`'s parser as vllm/entrypoints/cli/serve.py builds it (a `model_tag` positional, then
vllm/entrypoints/openai/cli_args.py make_arg_parser). The suite checks the same commands against
the documented flags kept as data (catalog/serve_flags.toml); this script checks that table's
verdicts against the real thing where vLLM can be imported.

vLLM's wheel depends on a CUDA build of torch, which this project never installs; its parser
needs no GPU. So: unpack the wheel's Python files beside the project's own environment, add the
few pure-Python modules it imports, and tell vLLM it runs on a CPU (its parser reads the platform
for a default):

    pip download vllm==0.11.0 --no-deps -d /tmp/vllm && cd /tmp/vllm && mkdir site && \
        (cd site && unzip -q ../vllm-0.11.0-*.whl 'vllm/*' -x 'vllm/*.so')
    pip install --no-deps --target /tmp/vllm/deps cachetools cbor2 blake3 cloudpickle \
        setproctitle fastapi==0.118.0 starlette==0.48.0 ...    # what the import asks for
    PYTHONPATH=/tmp/vllm/site:/tmp/vllm/deps python benchmarks/vllm_parser.py

Writes benchmarks/results/vllm_parser.json: the vLLM version, how many plans were parsed, and
every command vLLM refused with its message (and whether the flag table refused it too).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llamalab import catalog, deployment_plan
from llamalab.core.errors import InvalidSetting, LlamalabError
from llamalab.plan import commands


def vllm_parser():
    """`vllm serve`'s own parser, on vLLM's CPU platform (no GPU is needed to parse)."""
    import vllm
    import vllm.platforms
    from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.platforms.cpu import CpuPlatform
    from vllm.utils import FlexibleArgumentParser

    vllm.platforms._current_platform = CpuPlatform()
    parser = FlexibleArgumentParser(prog="vllm serve")
    parser.add_argument("model_tag", nargs="?")
    return vllm.__version__, make_arg_parser(parser)


def refused_by_vllm(parser, args: list[str]) -> str | None:
    """vLLM's error message for `args`, or None when it parses them."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parser.parse_args(args)
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1] if err.getvalue() else "exit"
    return None


def refused_by_table(args: list[str]) -> bool:
    try:
        commands.check("vllm", args)
    except InvalidSetting:
        return True
    return False


def table_vs_vllm(parser) -> list[str]:
    """Where catalog/serve_flags.toml's vLLM rows differ from vLLM's parser: a spelling it does
    not know, or other choices."""
    actions = parser._option_string_actions
    out = []
    for f in catalog.read("serve_flags.toml")["flag"]:
        if f["server"] != "vllm":
            continue
        for name in f["names"]:
            if name not in actions:
                out.append(f"{name}: not a vLLM flag")
                continue
            theirs = sorted(map(str, actions[name].choices or ())) or "any value"
            if f.get("choices") and theirs != sorted(f["choices"]):
                out.append(f"{name}: table {sorted(f['choices'])}, vLLM {theirs}")
    return out


def plans():
    """Every catalog model × scheme × GPU whose plan is a vLLM one, at up to 8K of context."""
    for m in catalog.model_names():
        ctx = min(8192, catalog.card(m).context)
        for s in catalog.scheme_names():
            for g in catalog.gpu_names():
                try:
                    plan = deployment_plan(m, s, g, context=ctx)
                except LlamalabError:
                    continue
                if plan.vllm_command:
                    yield (m, s, g), plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "vllm_parser.json"))
    out = Path(ap.parse_args().out)
    version, parser = vllm_parser()
    known_bad = {  # the parser must refuse these, or a zero below means nothing
        "misspelt flag": ["m", "--tensor-paralel-size", "2"],
        "kv-cache dtype not a choice": ["m", "--kv-cache-dtype", "int4"],
        "tensor parallel not an int": ["m", "--tensor-parallel-size", "two"],
    }
    sanity = {name: refused_by_vllm(parser, args) for name, args in known_bad.items()}
    assert all(sanity.values()), f"vLLM's parser accepted a bad command: {sanity}"
    parsed, refused, distinct = 0, [], set()
    for case, plan in plans():
        args = shlex.split(plan.vllm_command)[2:]  # after `vllm serve`
        distinct.add(shlex.join(args[1:]).replace(args[0], "MODEL"))
        message = refused_by_vllm(parser, args)
        parsed += 1
        if message is not None:
            refused.append({"plan": case, "args": args, "vllm": message,
                            "flag_table_refused": refused_by_table(args)})  # fmt: skip
    report = {
        "vllm_version": version,
        "plans_parsed": parsed,
        "distinct_flag_sets": len(distinct),
        "refused_by_vllm": refused,
        "known_bad_refused": sanity,
        "flag_table_differences": table_vs_vllm(parser),
    }
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"vLLM {version}: {parsed} plans, {len(distinct)} distinct flag sets, "
          f"{len(refused)} refused by vLLM's parser; flag table vs vLLM: "
          f"{report['flag_table_differences'] or 'the same'} → {out}")  # fmt: skip


if __name__ == "__main__":
    main()
