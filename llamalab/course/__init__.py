"""The course: its notebooks and dashboards (found in a source checkout, or inside the installed
wheel, where the build puts a copy), `llamalab course` that copies them out, and the exercises:
`exercises("00")` is a notebook's workbook (checks, hints, tries; solutions only under
`LLAMALAB_SOLUTIONS=1`), `check()` the comparator under it, and `expect()` the notebooks'
self-checks (✓/✗ with what a ✗ means for a learner; raised under the switch); `read_speed(g)`
places a measured decode speed against this machine's own roofline.

    ex = exercises("00")
    ex.check(1, answer_1)
"""

from .exercise import Checked, check
from .files import copy_to, dashboards_dir, notebooks_dir
from .render import Rendered, render_course
from .speed import SpeedReading, read_speed
from .workbook import (
    SOLUTIONS_ENV,
    CheckFailed,
    Exercise,
    ExercisesFailed,
    Workbook,
    exercises,
    expect,
    solutions_on,
)

__all__ = [
    "SOLUTIONS_ENV",
    "CheckFailed",
    "Checked",
    "Exercise",
    "ExercisesFailed",
    "Rendered",
    "SpeedReading",
    "Workbook",
    "check",
    "copy_to",
    "dashboards_dir",
    "exercises",
    "expect",
    "notebooks_dir",
    "read_speed",
    "render_course",
    "solutions_on",
]
