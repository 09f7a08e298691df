"""The `llamalab` command: doctor, models, estimate, quantize, lab, course, workshop (and
`workshop check`), room, bundle."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from .core.errors import LlamalabError
from .plan.estimator import KV_DTYPES, MODES
from .plan.parallel import ENGINES

CHECK = "check"  # `llamalab workshop check`: never a dashboard's name
PACKAGES = (
    "torch",
    "transformers",
    "accelerate",
    "torchao",
    "bitsandbytes",
    "optimum",
    "gptqmodel",
    "llama_cpp_python",
    "huggingface_hub",
    "jupyterlab",
    "ipywidgets",
    "plotly",
    "anywidget",
    "pandas",
)
HISTORY = (
    "GPTQ/AWQ history: transformers 5 dropped auto-gptq (0.7.1 fails to import: `no_init_weights`) "
    "and autoawq\n"
    "(deprecated upstream; on CPU it needs intel_extension_for_pytorch); both now go through "
    "gptqmodel (+ optimum for GPTQ)."
)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def doctor(args) -> int:
    """Explain this environment: versions, devices, schemes, cache, offline state."""
    import platform

    from . import runtime
    from .core import paths
    from .core.hardware import hardware
    from .runtime.files import embedded, source

    print(f"llamalab doctor — Python {platform.python_version()} on {platform.platform()}\n")
    print("Packages:")
    for p in PACKAGES:
        print(f"  {p:<18}{_version(p)}")
    print("\nHardware:")
    print("  " + str(hardware()).replace("\n", "\n  "))
    print("\nSchemes (runs here? else why not):")
    table = runtime.capabilities()
    for name, rows in table.groupby("scheme", sort=False):
        cells = [
            f"{r.device}: " + ("yes" if r.available else f"no ({r.reason})")
            for r in rows.itertuples()
        ]
        print(f"  {name:<10}" + " | ".join(cells))
    print("\n" + HISTORY)
    print("\nCache:")
    print(f"  LLAMALAB_CACHE     {paths.cache_dir()} (written)")
    shared = paths.shared_cache_dir()
    print(f"  LLAMALAB_SHARED_CACHE {shared or 'unset'}" + (" (read only)" if shared else ""))
    try:
        src = embedded.gguf_path()
        print(f"  embedded GGUF      {src} ({src.stat().st_size / 1e6:.1f} MB)")
    except LlamalabError as e:
        print(f"  embedded GGUF      missing — {e.fix}")
    state = (
        "converted"
        if embedded.is_converted()
        else "not converted yet (first load converts it, ~30 s)"
    )
    print(f"  embedded model     {embedded.model_dir()} — {state}")
    offline = source.offline()
    print(
        f"\nOffline: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', 'unset')} → "
        + (
            "Hub downloads disabled; cached and embedded models only."
            if offline
            else "Hub downloads allowed when a model is not cached."
        )
    )
    return 0


def models_cmd(args) -> int:
    from .catalog import models

    df = models()
    cols = ["name", "params_b", "layers", "hidden", "heads", "kv_heads", "context", "license"]
    print(df[cols].to_string(index=False))
    return 0


def estimate_cmd(args) -> int:
    from .plan.estimator import estimate
    from .plan.sizing import sizing

    kw = dict(
        kv_dtype=args.kv_dtype, device=args.device, group_size=args.group_size, engine=args.engine
    )
    if args.gpu:
        p = sizing(args.model, args.scheme, args.gpu, args.context, args.batch, args.mode, **kw)
        e = p.estimate
    else:
        e = estimate(args.model, args.scheme, args.context, args.batch, args.mode, **kw)
    print(e)
    for note in e.notes:
        print(f"  note: {note}")
    if args.gpu:
        print(
            f"\nOn {args.gpu}: fits={p.fits}, devices needed={p.devices_needed}, "
            f"longest context={p.max_context}, best scheme at this context={p.best_scheme}"
            f"\n  ({p.best_scheme_why})"
        )
    return 0


def quantize_cmd(args) -> int:
    from .core.settings import from_arguments
    from .quantization import quantize
    from .quantization.settings import QuantizeSettings

    q = quantize(
        args.model, args.method, force=args.force, **from_arguments(QuantizeSettings, args)
    )
    print(
        f"{q.scheme}: {q.path} ({q.size_bytes() / 1e6:.1f} MB, "
        f"{'cached' if q.cached else 'made now'})"
    )
    return 0


def lab(args) -> int:
    """JupyterLab on the course, bound to 127.0.0.1 with a token (random unless given)."""
    from .core import validate

    validate.integer("--port", args.port, 1, 65535)
    token = args.token or os.environ.get("LLAMALAB_LAB_TOKEN") or secrets.token_hex(24)
    root = Path(args.root or _course_root()).resolve()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={args.port}",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.port_retries=0",
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=None",
    ]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # jupyter exits as root without it (containers, Binder-like VMs)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"llamalab lab: http://127.0.0.1:{args.port}/lab?token={token}", flush=True)
    os.execv(sys.executable, cmd)


def workshop(args) -> int:
    """Serve one course dashboard with Voilà (127.0.0.1 unless --ip, a token, progressive
    rendering, offline)."""
    from .workshop import dashboards, voila_command

    if args.dashboard == CHECK:
        return workshop_check(args)
    if args.list or not args.dashboard:
        for name, path in dashboards(args.folder).items():
            print(f"{name:<16}{path}")
        return 0
    if args.results:
        os.environ["LLAMALAB_ROOM_DIR"] = str(Path(args.results).resolve())
    argv, env, token = voila_command(
        args.dashboard, port=args.port, ip=args.ip, token=args.token, folder=args.folder
    )
    host = "127.0.0.1" if args.ip in ("127.0.0.1", "0.0.0.0", "") else args.ip
    print(f"llamalab workshop: http://{host}:{args.port}/?token={token}", flush=True)
    if args.ip not in ("127.0.0.1", "localhost"):
        print(
            f"  listening on {args.ip}: "
            f"learners open http://<this machine>:{args.port}/?token={token}",
            flush=True,
        )
    os.execve(sys.executable, argv, env)


def workshop_check(args) -> int:
    """`llamalab workshop check`: each readiness check and its fix; exit code 0 when all pass."""
    from .workshop.check import check_room, ready, report

    per = args.per_learner_gb * 1e9 if args.per_learner_gb else None
    checks = check_room(room=args.room, bundle=args.bundle, learners=args.learners,
                        per_learner_bytes=per)  # fmt: skip
    print(report(checks))
    if not (args.room or os.environ.get("LLAMALAB_ROOM")):
        print("(room server not checked: give --room URL#token=… or set LLAMALAB_ROOM)")
    if not args.bundle:
        print("(bundle not checked: give --bundle DIR)")
    return 0 if ready(checks) else 1


def room_cmd(args) -> int:
    """Serve one model for the room until Ctrl-C (or SIGTERM), and print what learners set."""
    import signal

    from .workshop.room_server import serve_room

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds the `with`: stops the server
    with serve_room(args.model, args.scheme, host=args.host, port=args.port, slots=args.slots,
                    context=args.context, learners=args.learners, board_dir=args.board_dir,
                    board_port=args.board_port) as room:  # fmt: skip
        print(room.instructions(), flush=True)
        print("Ctrl-C stops the room server.", flush=True)
        try:
            room.server.task.wait()
        except KeyboardInterrupt:
            pass
    return 0


def round_cmd(args) -> int:
    """Compute the blind arena's round once (or read answers from a JSON file) and publish it on
    the room's board; learners' arenas fetch it from there."""
    import json

    from .core.errors import InvalidSetting
    from .runtime.room import current_room, parse_room
    from .workshop.rounds import PROMPTS, compute_round, publish_round

    room = parse_room(args.room.removeprefix("LLAMALAB_ROOM=")) if args.room else current_room()
    if room is None:
        raise InvalidSetting(
            "No room to publish the round to.",
            "Give --room URL#token=… (what `llamalab room serve` printed) or set LLAMALAB_ROOM.",
        )
    if args.answers:
        answers = json.loads(Path(args.answers).read_text(encoding="utf-8"))
    else:
        answers = compute_round(args.model, args.schemes, args.prompt or PROMPTS,
                                args.max_new_tokens)  # fmt: skip
    stored = publish_round(answers, name=args.name, room=room)
    n = len({a["contender"] for a in stored["answers"]})
    print(f"round {stored['name']!r} published on {room.board_url}: {n} contenders, "
          f"{len(stored['answers'])} answers; learners' blind arenas fetch it.")  # fmt: skip
    return 0


def hub_cmd(args) -> int:
    """The room's JupyterHub until Ctrl-C (or SIGTERM): prints the URL and the room password."""
    import signal

    from .workshop.hub import serve_hub

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds the `with`: stops the hub
    with serve_hub(host=args.host, port=args.port, password=args.password, memory=args.memory,
                   cpus=args.cpus, room=args.room or os.environ.get("LLAMALAB_ROOM"),
                   cache=args.cache, folder=args.folder) as hub:  # fmt: skip
        print(hub.instructions(), flush=True)
        print("Ctrl-C stops the hub and every learner's server.", flush=True)
        try:
            hub.task.join()
        except KeyboardInterrupt:
            pass
    return 0


def course_cmd(args) -> int:
    """Copy the course's notebooks and dashboards into a folder of yours, or (`html`) render them
    executed as HTML and .ipynb with an index page."""
    from .course import copy_to, render_course

    if args.action == "html":
        done = render_course(
            args.output or "llamalab-course-html",
            args.notebooks,
            execute=not args.no_execute,
            solutions=args.solutions,
            on_notebook=lambda r: print(
                f"{r.notebook}: "
                + (f"ran {r.run_s:.0f} s" if r.executed else "converted")
                + (f", stopped: {r.error}" if r.error else ""),
                flush=True,
            ),
        )
        index = done[0].html.parent / "index.html" if done else None
        print(f"llamalab course html: {index}")
        return 1 if any(r.error for r in done) else 0
    if args.notebooks or args.no_execute or args.solutions:
        raise LlamalabError(
            "--notebooks, --no-execute and --solutions belong to `llamalab course html`.",
            "Run `llamalab course html ...`, or `llamalab course --output DIR` to copy the course.",
        )
    print(f"llamalab course: the notebooks are in {copy_to(args.output or 'llamalab-course')}")
    return 0


def bundle_cmd(args) -> int:
    from .workshop import bundle

    html = True if args.html == "render" else args.html
    out = bundle(
        args.models, args.out, wheels=not args.no_wheels, llamacpp=args.llamacpp, html=html
    )
    print(f"bundle written to {out} — how to use it: {out / 'INSTALL.txt'}")
    return 0


def _course_root() -> Path:
    """The checkout's notebooks/ (run from a clone), else a copy in ~/llamalab-course (an installed
    kit's course is read-only in site-packages)."""
    from .course import copy_to, files

    return files.CHECKOUT if files.CHECKOUT.is_dir() else copy_to(Path.home() / "llamalab-course")


def main(argv=None) -> int:
    from .core.settings import add_arguments
    from .quantization.settings import QuantizeSettings

    p = argparse.ArgumentParser(prog="llamalab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser(
        "doctor", help="versions, devices, schemes, cache and offline state"
    ).set_defaults(fn=doctor)
    sub.add_parser("models", help="the model catalog").set_defaults(fn=models_cmd)
    e = sub.add_parser("estimate", help="memory breakdown for a model")
    e.add_argument("model")
    e.add_argument("--scheme", default="bf16")
    e.add_argument("--context", type=int, default=4096)
    e.add_argument("--batch", type=int, default=1)
    e.add_argument("--mode", default="inference", choices=list(MODES))
    e.add_argument("--kv-dtype", default=None, choices=list(KV_DTYPES))
    e.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    e.add_argument("--group-size", type=int, default=None)
    e.add_argument(
        "--engine",
        default=None,
        choices=list(ENGINES),
        help="whose prefill and overheads count (default: llama.cpp for GGUF, else transformers)",
    )
    e.add_argument(
        "--gpu", default=None, help="also answer fits / longest context / best scheme for this GPU"
    )
    e.set_defaults(fn=estimate_cmd)
    q = sub.add_parser(
        "quantize", help="make a GPTQ or AWQ checkpoint (cached; the options are QuantizeSettings)"
    )
    q.add_argument("model", help="catalog name, 'default' (the embedded model) or a local folder")
    q.add_argument("method", choices=["gptq", "awq"])
    q.add_argument(
        "--force", action="store_true", help="quantize again even when a cached checkpoint exists"
    )
    add_arguments(q, QuantizeSettings)
    q.set_defaults(fn=quantize_cmd)
    lb = sub.add_parser("lab", help="JupyterLab on the notebooks (127.0.0.1, token on)")
    lb.add_argument("--port", type=int, default=8888)
    lb.add_argument("--token", default=None)
    lb.add_argument(
        "--root",
        default=None,
        help="folder to open (default: the course; a copy in ~/llamalab-course "
        "when llamalab is installed rather than run from a clone)",
    )
    lb.add_argument("--no-browser", action="store_true")
    lb.set_defaults(fn=lab)
    co = sub.add_parser(
        "course",
        help="copy the course's notebooks and dashboards into a folder, or (html) render them "
        "executed, for reading without running",
    )
    co.add_argument(
        "action",
        nargs="?",
        default="copy",
        choices=["copy", "html"],
        help="copy (default) or html: execute each notebook offline in a scratch copy and write "
        "its HTML and executed .ipynb, with an index.html",
    )
    co.add_argument(
        "--output",
        default=None,
        help="the folder (made if missing; default llamalab-course, or llamalab-course-html; "
        "copy keeps files there, html replaces its own pages)",
    )
    co.add_argument(
        "--notebooks",
        nargs="+",
        default=None,
        help="html: course names or .ipynb paths (default all)",
    )
    co.add_argument("--no-execute", action="store_true", help="html: convert as stored, no run")
    co.add_argument(
        "--solutions", action="store_true", help="html: run with the exercises' solutions filled in"
    )
    co.set_defaults(fn=course_cmd)
    ws = sub.add_parser(
        "workshop", help="serve a course dashboard with Voilà for a room (127.0.0.1, token on)"
    )
    ws.add_argument(
        "dashboard",
        nargs="?",
        help=f"a dashboard name (see --list), or `{CHECK}`: is the room ready? (exit 0 when it is)",
    )
    ws.add_argument("--list", action="store_true", help="list the dashboards")
    ws.add_argument("--port", type=int, default=8866)
    ws.add_argument(
        "--ip",
        default="127.0.0.1",
        help="interface to listen on (0.0.0.0: the whole room's network)",
    )
    ws.add_argument("--token", default=None, help="access token (random unless given)")
    ws.add_argument(
        "--results", default=None, help="shared folder where each learner's results are collected"
    )
    ws.add_argument(
        "--folder", default=None, help="where the dashboards are (default notebooks/dashboards)"
    )
    ws.add_argument("--room", default=None, help="check: the room server's URL#token=… line")
    ws.add_argument("--bundle", default=None, help="check: a bundle folder to verify")
    ws.add_argument(
        "--learners", type=int, default=None, help="check: kernels this machine must hold"
    )
    ws.add_argument(
        "--per-learner-gb",
        type=float,
        default=None,
        help="check: memory per learner's kernel (default: the estimator's, embedded model, 4K)",
    )
    ws.set_defaults(fn=workshop)
    rm = sub.add_parser("room", help="one model server for the room").add_subparsers(
        dest="room_cmd", required=True
    )
    rs = rm.add_parser("serve", help="serve a model to the room (127.0.0.1 unless --host)")
    rs.add_argument("--model", default="default")
    rs.add_argument("--scheme", default="q8_0", help="a GGUF type (q8_0, q4_k_m, f16, …)")
    rs.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind: an address of this machine or 0.0.0.0 (the room's network)",
    )
    rs.add_argument("--port", type=int, default=0, help="0: a free port, printed")
    rs.add_argument("--slots", type=int, default=None, help="parallel slots (default: sized)")
    rs.add_argument("--context", type=int, default=1024, help="tokens per slot")
    rs.add_argument("--learners", type=int, default=25, help="learners in the room")
    rs.add_argument(
        "--board-dir",
        default=None,
        help="folder of the room's board (learners' results and votes; default: in the cache)",
    )
    rs.add_argument(
        "--board-port", type=int, default=None, help="the board's port (default: --port + 1)"
    )
    rs.set_defaults(fn=room_cmd)
    rr = rm.add_parser(
        "round", help="compute the blind arena's round once and publish it on the room's board"
    )
    rr.add_argument("--model", default="default")
    rr.add_argument("--schemes", nargs="+", default=["f16", "q4_k_m"],
                    help="the contenders (the first is the KL reference)")  # fmt: skip
    rr.add_argument("--prompt", action="append", help="a prompt (repeat; default: the dashboard's)")
    rr.add_argument("--max-new-tokens", type=int, default=48)
    rr.add_argument("--name", default="round", help="the round's name learners may ask for")
    rr.add_argument(
        "--answers", default=None, help='JSON: [{"contender", "prompt", "text"}, …], not computed'
    )
    rr.add_argument("--room", default=None, help="the room's URL#token=… (or LLAMALAB_ROOM)")
    rr.set_defaults(fn=round_cmd)
    rh = rm.add_parser("hub", help="the room's JupyterHub here (127.0.0.1 unless --host)")
    rh.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0: the room's network)")
    rh.add_argument("--port", type=int, default=8000, help="the hub's port (0: a free one)")
    rh.add_argument("--password", default=None, help="the room password (random unless given)")
    rh.add_argument("--memory", default="2G", help="each learner's memory limit (2G = 2 GiB)")
    rh.add_argument("--cpus", type=float, default=1.0, help="each learner's CPU quota")
    rh.add_argument("--room", default=None, help="the room server's URL#token=… (or LLAMALAB_ROOM)")
    rh.add_argument("--cache", default=None, help="the shared model cache (default: in --folder)")
    rh.add_argument(
        "--folder", default=None, help="the hub's state and learners' folders (default: temporary)"
    )
    rh.set_defaults(fn=hub_cmd)
    bd = sub.add_parser("bundle", help="wheelhouse + cached models for a room without internet")
    bd.add_argument(
        "--models",
        nargs="*",
        default=["default"],
        help="models to include (default: the embedded one)",
    )
    bd.add_argument("--out", required=True, help="folder to write the bundle into")
    bd.add_argument("--no-wheels", action="store_true", help="course and models, no wheelhouse")
    bd.add_argument(
        "--llamacpp",
        default="auto",
        choices=["auto", "include", "exclude"],
        help="the in-process llama.cpp wheel (built on this machine): auto ships it only when "
        "built for no more than AVX2 (portable to any x86-64 laptop with AVX2)",
    )
    bd.add_argument(
        "--html",
        default=None,
        metavar="FOLDER|render",
        help="the Binder-down fallback: each notebook's executed HTML from the folder `llamalab "
        "course html` made, or `render` to execute the course now (~15 min on 2 cores)",
    )
    bd.set_defaults(fn=bundle_cmd)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except LlamalabError as err:
        print(f"error: {err.message}\n→ {err.fix}", file=sys.stderr)
        return 2
