"""Package discovery and the course's files (the rest of the metadata is in pyproject.toml): every
package under llamalab/, the UI layer widgets/ installed as llamalab.widgets (no top-level `widgets`
module), and a copy of notebooks/ inside the wheel (llamalab/course/notebooks), so an installed kit
finds its course."""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

WIDGETS = ["llamalab.widgets"] + [f"llamalab.widgets.{p}" for p in find_packages("widgets")]
COURSE = ("*.ipynb", "*.md", "dashboards/*.ipynb")  # the glossary and internals beside them


class BuildWithCourse(build_py):
    """build_py, then the notebooks copied into the built package (editable installs read the
    checkout)."""

    def run(self):
        super().run()
        src, dest = Path("notebooks"), Path(self.build_lib) / "llamalab" / "course" / "notebooks"
        for pattern in COURSE:
            for f in src.glob(pattern):
                (dest / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest / f.relative_to(src))


setup(
    packages=find_packages(include=["llamalab", "llamalab.*"]) + WIDGETS,
    package_dir={"llamalab.widgets": "widgets"},
    cmdclass={"build_py": BuildWithCourse},
)
