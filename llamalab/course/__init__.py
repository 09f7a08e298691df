"""The course: its notebooks and dashboards (found in a source checkout, or inside the installed
wheel, where the build puts a copy), `llamalab course` that copies them out, and the exercises:
`exercises("00")` is a notebook's workbook (checks, hints, tries; solutions only under
`LLAMALAB_SOLUTIONS=1`), `check()` the comparator under it.

    ex = exercises("00")
    ex.check(1, answer_1)
"""

from .exercise import Checked, check
from .files import copy_to, dashboards_dir, notebooks_dir
from .render import Rendered, render_course
from .workbook import SOLUTIONS_ENV, Exercise, ExercisesFailed, Workbook, exercises, solutions_on

__all__ = [
    "SOLUTIONS_ENV",
    "Checked",
    "Exercise",
    "ExercisesFailed",
    "Rendered",
    "Workbook",
    "check",
    "copy_to",
    "dashboards_dir",
    "exercises",
    "notebooks_dir",
    "render_course",
    "solutions_on",
]
