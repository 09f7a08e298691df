"""The Binder-down fallback in the bundle: the executed HTML `llamalab course html` makes goes into
BUNDLE/course-html, listed in MANIFEST.json with its sha256, and `llamalab workshop check --bundle`
says which course notebooks have an executed page there. Two one-cell notebooks named as the
course's first two are rendered by the real renderer (a real kernel each);
the course itself is not run."""

import hashlib
import json
import shutil

import nbformat
import pytest

from llamalab.cli import main
from llamalab.core.errors import InvalidSetting
from llamalab.course.render import render_course
from llamalab.workshop import check
from llamalab.workshop.fallback import HTML_DIR
from llamalab.workshop.offline import MANIFEST, bundle, verify_bundle

GOOD, BROKEN = "00_quickstart", "01_landscape"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """What `llamalab course html` writes, for a course whose 00 runs and whose 01 raises."""
    src, out = tmp_path_factory.mktemp("notebooks"), tmp_path_factory.mktemp("html")
    for name, code in ((GOOD, "print(6 * 7)"), (BROKEN, "raise ValueError('no model here')")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name}"),
                                             nbformat.v4.new_code_cell(code)])  # fmt: skip
        nbformat.write(nb, src / f"{name}.ipynb")
    done = render_course(out, notebooks=[src / f"{GOOD}.ipynb", src / f"{BROKEN}.ipynb"],
                         timeout_s=120)  # fmt: skip
    assert [bool(r.error) for r in done] == [False, True]
    return out


@pytest.fixture(scope="module")
def bundled(rendered, tmp_path_factory):
    out = tmp_path_factory.mktemp("usb") / "bundle"
    assert (
        main(["bundle", "--out", str(out), "--no-wheels", "--models", "--html", str(rendered)]) == 0
    )
    return out


def test_the_executed_pages_are_in_the_bundle_with_their_checksums(bundled):
    files = json.loads((bundled / MANIFEST).read_text())["files"]
    page = bundled / HTML_DIR / f"{GOOD}.html"
    assert "42" in page.read_text(encoding="utf-8")  # the cell's output, not just its code
    size, digest = files[f"{HTML_DIR}/{GOOD}.html"]
    assert size == page.stat().st_size and digest == hashlib.sha256(page.read_bytes()).hexdigest()
    assert f"{HTML_DIR}/index.html" in files and f"{HTML_DIR}/{BROKEN}.ipynb" in files
    assert verify_bundle(bundled) == []


def test_the_check_names_what_is_missing_stopped_or_complete(bundled, capsys, tmp_path):
    main(["workshop", "check", "--bundle", str(bundled)])
    line = next(x for x in capsys.readouterr().out.splitlines() if "Binder-down HTML" in x)
    course = sorted(p.stem for p in (bundled / "course").glob("[0-9][0-9]_*.ipynb"))
    assert line.startswith(f"✗ Binder-down HTML: 1 of {len(course)} notebooks executed")
    assert f"stopped at an error: {BROKEN}" in line
    assert f"missing: {', '.join(course[2:])}" in line
    whole = tmp_path / "whole"  # every notebook with an executed page: 00's, under each name
    shutil.copytree(bundled / "course", whole / "course")
    (whole / HTML_DIR).mkdir()
    for name in course:
        for ext in (".html", ".ipynb"):
            shutil.copy(bundled / HTML_DIR / f"{GOOD}{ext}", whole / HTML_DIR / f"{name}{ext}")
    assert check.bundle_html(whole).ok
    nb = json.loads((whole / HTML_DIR / f"{GOOD}.ipynb").read_text())
    for cell in (c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["outputs"], cell["execution_count"] = [], None  # as stored: converted, never run
    (whole / HTML_DIR / f"{GOOD}.ipynb").write_text(json.dumps(nb))
    found = check.bundle_html(whole)
    assert not found.ok and f"not executed: {GOOD}" in found.detail and "course html" in found.fix
    shutil.rmtree(whole / HTML_DIR)  # a bundle made without pages: optional, and it says how
    found = check.bundle_html(whole)
    assert found.ok and "not in this bundle" in found.detail and "course html" in found.detail


def test_a_folder_that_is_not_the_renderers_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(InvalidSetting, match="llamalab course html --output"):
        bundle((), tmp_path / "bundle", wheels=False, html=tmp_path)
    assert not (tmp_path / "bundle").exists()
