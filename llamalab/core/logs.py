"""The learner's logging, kept as it was across third-party code that configures the root logger
on import: gptqmodel 7.6 (imported by peft when it wraps or loads adapters, and by the GPTQ/AWQ
backends) sets the root level to INFO and adds a stderr handler, after which every HTTP request
httpx makes prints a line in the notebook."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def root_logging_kept() -> Iterator[None]:
    """Restore the root logger's level and handlers after the block."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
