"""Readable without running: each course notebook executed offline in a scratch copy (the stored
notebooks stay output-free), written as HTML (nbconvert's lab template) and as an executed .ipynb
for nbviewer, with an index page listing them and how long each ran. `llamalab course html`."""

from __future__ import annotations

import html
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..core.errors import LlamalabError
from ..core.hardware import hardware
from ..core.paths import atomic_file
from .files import notebooks_dir
from .workbook import SOLUTIONS_ENV

OUTPUT = "llamalab-course-html"
# The kernel's environment on top of this process's: offline, and plotly figures written with
# plotly.js inline (text/html) beside their JSON, so the HTML draws them without a network.
KERNEL_ENV = {"HF_HUB_OFFLINE": "1", "PLOTLY_RENDERER": "plotly_mimetype+notebook"}


@dataclass(frozen=True)
class Rendered:
    """One notebook rendered: its pages, whether it ran, how long, and the error that stopped it."""

    notebook: str
    title: str
    html: Path
    ipynb: Path
    executed: bool
    run_s: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def course_notebooks() -> list[Path]:
    """The numbered course notebooks (NN_name.ipynb), in order."""
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def render_course(
    output=OUTPUT,
    notebooks=None,
    execute: bool = True,
    solutions: bool = False,
    timeout_s: int = 1800,
    on_notebook: Callable[[Rendered], None] | None = None,
) -> list[Rendered]:
    """Execute (unless `execute=False`) and convert `notebooks` (course names such as
    '00_quickstart', or .ipynb paths; default every course notebook) into `output`, then write
    its index.html. `solutions`: run with the exercises' answers filled in (an instructor's copy);
    else as a learner sees them. A notebook that fails is still written, up to its error."""
    sources = _sources(notebooks)
    out = Path(output).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    done = []
    with tempfile.TemporaryDirectory(prefix="llamalab-render-") as scratch:
        for src in sources:
            copy = _scratch_copy(src, Path(scratch))
            done.append(_render(copy, out, execute, solutions, timeout_s))
            if on_notebook:
                on_notebook(done[-1])
    write_index(out, done, execute)
    return done


def _sources(notebooks) -> list[Path]:
    """Course names or paths → existing notebook files."""
    if notebooks is None:
        return course_notebooks()
    if isinstance(notebooks, (str, os.PathLike)):
        notebooks = [notebooks]
    course = {p.stem: p for p in course_notebooks()}
    found = []
    for n in notebooks:
        path = Path(n).expanduser()
        if path.suffix == ".ipynb" and path.is_file():
            found.append(path.resolve())
        elif Path(str(n)).stem in course:
            found.append(course[Path(str(n)).stem])
        else:
            raise LlamalabError(
                f"{n!r} is neither a course notebook nor an .ipynb file.",
                f"Name one of {', '.join(course)}, or give the path of a notebook.",
            )
    return found


def _scratch_copy(src: Path, scratch: Path) -> Path:
    """Where `src` runs: in a copy of the course folder (its notebooks read files beside them), or
    for another notebook a copy of that file alone; runs write there, never into the original."""
    course = notebooks_dir().resolve()
    folder = scratch / ("course" if src.parent.resolve() == course else "other")
    if folder.name == "course" and not folder.exists():
        shutil.copytree(course, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    elif folder.name == "other":
        folder.mkdir(exist_ok=True)
        shutil.copy2(src, folder / src.name)
    return folder / src.name


def _render(path: Path, out: Path, execute: bool, solutions: bool, timeout_s: int) -> Rendered:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    t = time.perf_counter()
    error = _execute(nb, path.parent, _kernel_env(solutions), timeout_s) if execute else ""
    run_s = time.perf_counter() - t if execute else 0.0
    title = _title(nb, path.stem)
    ipynb, page = out / path.name, out / f"{path.stem}.html"
    with atomic_file(ipynb) as tmp:
        nbformat.write(nb, tmp)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nb, resources={"metadata": {"name": title}}
    )
    with atomic_file(page) as tmp:
        tmp.write_text(body, encoding="utf-8")
    return Rendered(path.stem, title, page, ipynb, execute, run_s, error)


def _kernel_env(solutions: bool) -> dict:
    """This process's environment, offline, with the solutions switch set as asked."""
    env = {**os.environ, **KERNEL_ENV}
    env.pop(SOLUTIONS_ENV, None)
    return {**env, SOLUTIONS_ENV: "1"} if solutions else env


def _execute(nb, cwd: Path, env: dict, timeout_s: int) -> str:
    """Run `nb` in a fresh kernel in `cwd`, outputs and widget state kept in `nb`;
    '' or the error that stopped it."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    client = NotebookClient(
        nb,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        store_widget_state=True,
        coalesce_streams=True,  # a streamed answer reads as one text, not a line per token
    )
    try:
        client.execute(env=env)
    except CellExecutionError as e:
        return f"cell {_failed_cell(nb)}: {e.ename}: {e.evalue}"
    except (CellTimeoutError, DeadKernelError) as e:
        return f"cell {_failed_cell(nb)}: {type(e).__name__}: {str(e).strip()[:200]}"
    return ""


def _failed_cell(nb) -> int | str:
    """The 1-based number of the first cell with an error output (where the run stopped)."""
    for i, cell in enumerate(nb.cells, 1):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return i
    return "?"


def _title(nb, fallback: str) -> str:
    """The notebook's first heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def write_index(out: Path, rendered: list[Rendered], executed: bool) -> Path:
    """index.html: one row per notebook with its pages and run time."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    how = (
        f"executed {when} offline (HF_HUB_OFFLINE=1) on {hardware().cores} CPU cores"
        if executed
        else f"converted {when} without running: no outputs"
    )
    rows = "\n".join(_row(r) for r in rendered)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>llamalab course</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{padding:.3em .8em;text-align:left}} .err{{color:#cf222e}}</style></head>
<body><h1>llamalab course</h1><p>The course notebooks, {html.escape(how)}.
Run times are this machine's, not a learner's.</p>
<table><tr><th>notebook</th><th>run time</th><th>{"executed " if executed else ""}notebook</th>
<th></th></tr>
{rows}
</table></body></html>
"""
    index = out / "index.html"
    with atomic_file(index) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return index


def _row(r: Rendered) -> str:
    ran = f"{r.run_s:.0f} s" if r.executed else "not run"
    status = f'<span class="err">stopped: {html.escape(r.error)}</span>' if r.error else ""
    return (
        f'<tr><td><a href="{html.escape(r.html.name)}">{html.escape(r.title)}</a></td>'
        f'<td>{ran}</td><td><a href="{html.escape(r.ipynb.name)}">{html.escape(r.ipynb.name)}'
        f"</a></td><td>{status}</td></tr>"
    )
