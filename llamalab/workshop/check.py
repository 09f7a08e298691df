"""`llamalab workshop check`: is the room ready? One `Check` per thing the day before must have done
(the course's files, the models and GGUFs the notebooks load, the llama.cpp server, the room's
server, the bundle, Binder's configuration, disk and memory), each with the fix when it is missing.
Nothing loads a model: every check reads files or asks a server, so it takes seconds.

    checks = check_room(room="http://192.0.2.2:8080#token=…", learners=25)
    print(report(checks))            # ✓/✗ per line, and the fix under each ✗
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import LlamalabError
from ..core.paths import cache_dir
from ..core.units import both
from . import prepared
from .prepared import COURSE_GGUF, RANDOM_NOTEBOOK

ROOM_DASHBOARD = "room"
SERVER_MODULE = "xllamacpp"  # llama.cpp's server (llamalab.serve, `llamalab room serve`)
INPROCESS_MODULE = "llama_cpp"  # llama.cpp in the kernel: GGUF loads in 01, 02, 04
ROOM_ENV = "LLAMALAB_ROOM"
# Free disk per learner on this machine: one LoRA run of notebook 03 writes a folder under
# LLAMALAB_CACHE/finetune (adapter, merged copy), ~0.5 GB for the embedded model; twice that.
DISK_PER_LEARNER = 1e9
BADGE = re.compile(r"mybinder\.org/v2/gh/([^/\s)]+)/")


@dataclass(frozen=True)
class Check:
    """One line of the room's readiness: what was checked, whether it passed, what was found,
    and what to do when it did not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"
        return line if self.ok or not self.fix else f"{line}\n    → {self.fix}"


def check_room(
    *,
    room: str | None = None,
    bundle=None,
    learners: int | None = None,
    per_learner_bytes: float | None = None,
    notebooks=None,
    checkout=None,
) -> list[Check]:
    """Every check that applies: the course and its prepared files always; the room's server when
    `room` (or LLAMALAB_ROOM) names one; the bundle when `bundle` names its folder; Binder's
    configuration in a source checkout (`checkout`: its root, default the one this kit runs
    from); memory for `learners` kernels on this machine when given."""
    from ..course import notebooks_dir

    try:
        folder = Path(notebooks) if notebooks else notebooks_dir()
    except LlamalabError:
        folder = None
    checks = [
        course_files(folder),
        embedded_model(),
        course_ggufs(),
        quantized_checkpoints(),
        random_ggufs(folder),
        server_module(),
        inprocess_llamacpp(),
    ]
    url = room or os.environ.get(ROOM_ENV)
    if url:
        checks.append(room_server(url))
    if bundle:
        checks += [bundle_files(bundle), bundle_html(bundle)]
    root = Path(checkout) if checkout else _checkout()
    if root is not None:
        checks += [binder_config(root), binder_badge(root)]
    checks.append(disk_free(learners or 1))
    if learners:
        checks.append(memory_for(learners, per_learner_bytes))
    return checks


def ready(checks: list[Check]) -> bool:
    return all(c.ok for c in checks)


def report(checks: list[Check]) -> str:
    """The checks, one per line, and the verdict."""
    failed = [c for c in checks if not c.ok]
    verdict = (
        "The room is ready."
        if not failed
        else f"Not ready: {len(failed)} of {len(checks)} checks failed "
        f"({', '.join(c.name for c in failed)})."
    )
    return "\n".join([*map(str, checks), verdict])


def course_files(folder: Path | None) -> Check:
    """The numbered notebooks and the room's dashboard, where `llamalab lab`/`workshop` look."""
    name, fix = (
        "course notebooks",
        "Reinstall llamalab (its wheel holds the course) or run from a clone.",
    )
    if folder is None or not folder.is_dir():
        return Check(name, False, f"no course folder at {folder or 'the installed kit'}", fix)
    numbered = sorted(p.name for p in folder.glob("[0-9][0-9]_*.ipynb"))
    boards = sorted(p.stem for p in (folder / "dashboards").glob("*.ipynb"))
    detail = f"{len(numbered)} notebooks ({', '.join(n[:2] for n in numbered) or 'none'}) and "
    detail += f"dashboards {', '.join(boards) or 'none'} in {folder}"
    if not numbered or ROOM_DASHBOARD not in boards:
        return Check(name, False, detail, fix)
    return Check(name, True, detail)


def embedded_model() -> Check:
    """The embedded model's wheel installed and converted once into the kit's cache."""
    from ..runtime.files import embedded

    name = "embedded model"
    try:
        embedded.gguf_path()
    except LlamalabError as e:
        return Check(name, False, e.message, e.fix)
    if not embedded.is_converted():
        return Check(
            name,
            False,
            f"not converted yet in {embedded.model_dir()} (~30 s once)",
            _python("llamalab.model_files('default')"),
        )
    return Check(name, True, f"converted in {embedded.model_dir()}")


def course_ggufs() -> Check:
    """The GGUF types the notebooks load, written by llama.cpp's tools into the cache."""
    from ..runtime.files import embedded

    name = f"course GGUFs ({', '.join(COURSE_GGUF)})"
    if not embedded.is_converted():
        return Check(name, False, "the embedded model is not converted yet", "Fix that first.")
    try:
        files = prepared.gguf_files()
        missing = [t for t, p in files.items() if not p.is_file()]
    except LlamalabError as e:
        return Check(name, False, e.message, e.fix)
    if missing:
        calls = "; ".join(f"llamalab.convert_gguf('default', '{t}')" for t in missing)
        return Check(name, False, f"missing: {', '.join(missing)}", _python(calls))
    return Check(name, True, f"in {sorted({str(p.parent) for p in files.values()})[0]}")


def quantized_checkpoints() -> Check:
    """Notebook 02's GPTQ and AWQ checkpoints (1 and 4 minutes on 2 cores: made the day before)."""
    from ..runtime.files import embedded

    name = "GPTQ/AWQ checkpoints"
    if not embedded.is_converted():
        return Check(name, False, "the embedded model is not converted yet", "Fix that first.")
    missing = [m for m, p in prepared.quantized_folders().items() if p is None]
    if missing:
        fix = " && ".join(f"llamalab quantize default {m}" for m in missing)
        return Check(
            name, False, f"not made with this environment's versions: {', '.join(missing)}", fix
        )
    folders = sorted({str(p.parent) for p in prepared.quantized_folders().values() if p})
    return Check(name, True, f"in {' and '.join(folders)}")


def random_ggufs(folder: Path | None) -> Check:
    """The random-weight GGUFs notebook 01 measures (≈ 0.7 and 1.0 GB, written on first run)."""
    name = "random-weight GGUFs"
    files = prepared.random_files(folder) if folder else None
    if files is None:
        return Check(
            name,
            False,
            f"no RANDOM_MODELS in {RANDOM_NOTEBOOK}'s parameters",
            "Reinstall llamalab (the course notebooks are part of it).",
        )
    missing = [s for s, p in files.items() if not p.is_file()]
    where = " and ".join(sorted({str(p.parent) for p in files.values()}))
    if missing:
        calls = "; ".join(f"l.random_gguf(l.RandomShape{s})" for s in missing)
        return Check(
            name,
            False,
            f"{len(missing)} of {len(files)} not built in {where}",
            _python(calls, alias="l"),
        )
    return Check(name, True, f"{len(files)} built in {where}")


def server_module() -> Check:
    """llama.cpp's server, which `llamalab.serve()` and `llamalab room serve` run."""
    return _imports("llama.cpp server", SERVER_MODULE, 'pip install "llamalab[deploy]"')


def inprocess_llamacpp() -> Check:
    """llama.cpp inside the kernel, and the instruction sets it was built for."""
    check = _imports(
        "llama.cpp in-process",
        INPROCESS_MODULE,
        "scripts/setup.sh (or binder/postBuild) builds it for this CPU without AMX",
    )
    if not check.ok:
        return check
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    built = [
        f.split(":")[-1].split("=")[0].strip() for f in info.split("|") if f.strip().endswith("= 1")
    ]
    return Check(check.name, True, f"{check.detail}; built with {' '.join(built)}")


def _imports(name: str, module: str, fix: str) -> Check:
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # ImportError, or a library that fails to load (OSError)
        return Check(name, False, f"`import {module}` failed: {e}", fix)
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version(module.replace("_", "-") if module != "llama_cpp" else "llama_cpp_python")
    except PackageNotFoundError:
        v = getattr(mod, "__version__", "?")
    return Check(name, True, f"{module} {v}")


def room_server(url: str) -> Check:
    """The room's model server answers with its token (what every learner's kernel will ask)."""
    from ..runtime.room import parse_room, served_model

    try:
        room = parse_room(url)
        model = served_model(room)
    except LlamalabError as e:
        return Check("room server", False, e.message, e.fix)
    return Check("room server", True, f"{room.url} serves {model} and accepts the token")


def bundle_files(folder) -> Check:
    """Every file of the bundle's manifest present, with its size and checksum, and nothing the
    course needs left out when it was made."""
    from .offline import LEFT_OUT, verify_bundle

    problems = verify_bundle(folder)
    if not problems:
        return Check("bundle", True, f"{folder}: every file matches its manifest checksum")
    shown = "; ".join(problems[:5]) + (
        f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
    )
    if all(p.startswith(LEFT_OUT) for p in problems):
        fix = (
            "On the machine that made the bundle, make what was left out (`llamalab workshop "
            "check` there says how; INSTALL.txt says why), then bundle again."
        )
    else:
        fix = (
            "Copy the bundle again from the machine that made it, or make it again: "
            "llamalab bundle --out DIR."
        )
    return Check("bundle", False, shown, fix)


def bundle_html(folder) -> Check:
    """The Binder-down fallback: every course notebook's executed HTML in the bundle."""
    from .fallback import HTML_DIR, pages

    name = "Binder-down HTML"
    if not (Path(folder) / HTML_DIR).is_dir():  # optional: the bundle runs the course without it
        return Check(name, True, "not in this bundle (optional read-only pages: llamalab course "
                     "html --output DIR, then llamalab bundle --out DIR --html DIR)")  # fmt: skip
    found = pages(Path(folder))
    total = sum(map(len, (found.executed, found.missing, found.stopped, found.not_run)))
    detail = f"{len(found.executed)} of {total} notebooks executed in {Path(folder) / HTML_DIR}"
    if found.complete:
        return Check(name, True, detail)
    wrong = [(found.missing, "missing"), (found.stopped, "stopped at an error"),
             (found.not_run, "not executed")]  # fmt: skip
    detail += "; " + "; ".join(f"{what}: {', '.join(n)}" for n, what in wrong if n)
    fix = ("llamalab course html --output llamalab-course-html (~15 min), then "
           "llamalab bundle --out DIR --html llamalab-course-html")  # fmt: skip
    return Check(name, False, detail, fix)


def binder_config(root: Path) -> Check:
    """binder/ as repo2docker reads it, installing the workshop extra the dashboards need."""
    name, binder = "Binder config", root / "binder"
    missing = [
        f for f in ("requirements.txt", "postBuild", "runtime.txt") if not (binder / f).is_file()
    ]
    if missing:
        return Check(
            name,
            False,
            f"{binder} lacks {', '.join(missing)}",
            "Restore binder/ from the repository (git checkout -- binder).",
        )
    req = (binder / "requirements.txt").read_text()
    extras = re.search(r"^-e \.\[([^\]]*)\]", req, re.M)
    if not extras or "workshop" not in extras.group(1).split(","):
        return Check(
            name,
            False,
            "binder/requirements.txt does not install the workshop extra "
            "(Voilà, for the dashboards)",
            "Add workshop to its `-e .[…]` line.",
        )
    return Check(
        name, True, f"{binder}: requirements.txt (-e .[{extras.group(1)}]), postBuild, runtime.txt"
    )


def binder_badge(root: Path) -> Check:
    """The README's Binder badge names the repository's real owner."""
    readme = root / "README.md"
    owners = BADGE.findall(readme.read_text(encoding="utf-8")) if readme.is_file() else []
    fix = "scripts/binder-owner.sh YOUR-GITHUB-OWNER (rewrites the README's Binder links)."
    if not owners:
        return Check("Binder badge", False, f"no mybinder.org link in {readme}", fix)
    if "OWNER" in owners:
        return Check("Binder badge", False, "the README's badge still says OWNER", fix)
    return Check(
        "Binder badge", True, f"points at github.com/{owners[0]}/ (pre-warm it: open it once)"
    )


def disk_free(learners: int) -> Check:
    """Free disk where the kit's cache is, for what the course writes while the room runs."""
    where = cache_dir()
    probe = next((p for p in (where, *where.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    need = DISK_PER_LEARNER * learners
    detail = f"{both(free)} free at {probe}; {learners} × {both(DISK_PER_LEARNER)} wanted"
    if free < need:
        return Check(
            "disk",
            False,
            detail,
            f"Free {both(need - free)} on that disk, or point LLAMALAB_CACHE at a larger one.",
        )
    return Check("disk", True, detail)


def memory_for(learners: int, per_learner_bytes: float | None = None) -> Check:
    """Available memory for `learners` kernels on this machine (a single-machine hub): each the
    estimator's figure for the embedded model at a 4K context unless given."""
    from ..core.hardware import hardware
    from ..plan.estimator import estimate

    each = per_learner_bytes or estimate("default", "bf16", 4096, device="cpu").peak_bytes
    have = hardware().ram_available_bytes
    detail = (
        f"{learners} learners × {both(each)} = {both(learners * each)}; {both(have)} available now"
    )
    if learners * each > have:
        fits = int(have // each)
        return Check(
            "memory",
            False,
            f"{detail} (room for {fits})",
            "Serve one model for the room (`llamalab room serve`: kernels then load no "
            "model), seat learners on Binder or laptops, or use a larger machine.",
        )
    return Check("memory", True, detail)


def _python(calls: str, alias: str = "llamalab") -> str:
    head = "import llamalab" if alias == "llamalab" else f"import llamalab as {alias}"
    return f'python -c "{head}; {calls}"'


def _checkout() -> Path | None:
    """The source checkout this kit runs from (binder/ and the README live there), else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "binder").is_dir() else None
