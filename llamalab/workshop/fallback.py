"""The Binder-down fallback inside a bundle: each course notebook's executed HTML (made by `llamalab
course html`, llamalab/course/render.py) in BUNDLE/course-html, so a room whose Binder is slow or
down can still read every notebook with its outputs. `bundle(html=...)` adds it; `llamalab workshop
check --bundle` reads what is there."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InvalidSetting

HTML_DIR = "course-html"
INDEX = "index.html"


@dataclass(frozen=True)
class Pages:
    """What a bundle's course-html holds for its course: notebooks with an executed page, those
    without a page, those whose run stopped at an error, those converted without running."""

    executed: list[str]
    missing: list[str]
    stopped: list[str]
    not_run: list[str]

    @property
    def complete(self) -> bool:
        return not (self.missing or self.stopped or self.not_run)


def html_source(html) -> Path | None:
    """The folder `llamalab course html` made (html=its path, checked), or None for html=True
    (render now); InvalidSetting before anything is written when it is not such a folder."""
    if html is True:
        return None
    source = Path(html).expanduser()
    if not (source / INDEX).is_file():
        raise InvalidSetting(
            f"{source} is not a folder made by `llamalab course html` (no {INDEX} there).",
            f"Make it first: llamalab course html --output {source}; or pass html=True.",
        )
    return source


def add_html(out: Path, html) -> list[str]:
    """Into `out`/course-html: every course notebook rendered now (html=True: executed offline,
    ~15 min for the course on 2 cores) or the folder `llamalab course html` made (html=its path).
    Returns notes for INSTALL.txt (notebooks that stopped at an error)."""
    dest, source = out / HTML_DIR, html_source(html)
    if source is None:
        from ..course.render import render_course

        done = render_course(dest)
        return [f"{r.notebook}.html stopped at {r.error}" for r in done if r.error]
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".*"))
    return []


def pages(bundle: Path) -> Pages:
    """Which of the bundle's course notebooks (BUNDLE/course/NN_name.ipynb) have their executed
    page in course-html: read from the executed .ipynb beside each page (execution counts set,
    no error output)."""
    bundle = Path(bundle)
    names = sorted(p.stem for p in (bundle / "course").glob("[0-9][0-9]_*.ipynb"))
    executed, missing, stopped, not_run = [], [], [], []
    for name in names:
        page, run = (bundle / HTML_DIR / f"{name}{ext}" for ext in (".html", ".ipynb"))
        if not page.is_file() or not run.is_file():
            missing.append(name)
            continue
        cells = [c for c in json.loads(run.read_text(encoding="utf-8"))["cells"]
                 if c["cell_type"] == "code"]  # fmt: skip
        if any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", [])):
            stopped.append(name)
        elif cells and all(c.get("execution_count") is None for c in cells):
            not_run.append(name)
        else:
            executed.append(name)
    return Pages(executed, missing, stopped, not_run)
