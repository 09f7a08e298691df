"""The course's exercises, one file per notebook: what each checks, its hints, and its solution.

A notebook stores each answer as `...`; `llamalab.course.exercises("00")` judges it with the file
here, and answers a placeholder from it only under the switch `LLAMALAB_SOLUTIONS=1` (the course's
tests). A learner who opens these files reads the solutions: they are the course's answer key.
"""

BY_NUMBER = {
    "00": "quickstart",
    "01": "landscape",
    "02": "quantization_tradeoffs",
    "03": "lora",
    "04": "deployment",
    "05": "widget_tour",
    "06": "capstone",
}
