"""The course: its notebooks and dashboards (found in a source checkout, or inside the installed
wheel, where the build puts a copy), `llamalab course` that copies them out, and `check()`, the
exercises' answer checker.

    from llamalab.course import check
    check(my_answer, measured_value, rel=0.1, why="decode speed is bandwidth ÷ bytes per token")
"""

from .exercise import Checked, check
from .files import copy_to, dashboards_dir, notebooks_dir

__all__ = ["Checked", "check", "copy_to", "dashboards_dir", "notebooks_dir"]
