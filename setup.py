"""Package discovery (the rest of the metadata is in pyproject.toml): every package under llamalab/,
plus the UI layer widgets/ installed as llamalab.widgets, so no top-level `widgets` module exists."""
from setuptools import find_packages, setup

WIDGETS = ["llamalab.widgets"] + [f"llamalab.widgets.{p}" for p in find_packages("widgets")]

setup(packages=find_packages(include=["llamalab", "llamalab.*"]) + WIDGETS,
      package_dir={"llamalab.widgets": "widgets"})
