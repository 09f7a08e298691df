"""Where the course's notebooks and dashboards are: a copy inside the installed package (setup.py's
build puts `notebooks/` there), else the `notebooks/` folder of the source checkout this package
runs from."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.errors import LlamalabError

PACKAGED = Path(__file__).parent / "notebooks"
CHECKOUT = Path(__file__).resolve().parents[2] / "notebooks"


def notebooks_dir() -> Path:
    """The folder of the numbered course notebooks."""
    for folder in (PACKAGED, CHECKOUT):
        if (folder / "00_quickstart.ipynb").is_file():
            return folder
    raise LlamalabError(
        "The course notebooks are not installed with this copy of llamalab.",
        "Reinstall llamalab (pip install llamalab) or run from a clone of its repository.",
    )


def dashboards_dir() -> Path:
    """The folder of the Voilà dashboards (`llamalab workshop` serves them)."""
    return notebooks_dir() / "dashboards"


def copy_to(destination) -> Path:
    """Copy the notebooks (dashboards included) into `destination` (made if missing; existing files
    there are left alone) so a learner can run and edit them; returns the folder."""
    dest = Path(destination).expanduser().resolve()
    src = notebooks_dir()
    for f in sorted(src.rglob("*")):
        target = dest / f.relative_to(src)
        if f.is_file() and not target.exists() and ".ipynb_checkpoints" not in f.parts:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    return dest
