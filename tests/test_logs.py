"""`core.logs.root_logging_kept`: third-party code that configures the root logger on import
(gptqmodel sets INFO and adds a stderr handler) leaves a notebook's logging as it was."""

import logging

from llamalab.core.logs import root_logging_kept


def test_the_root_loggers_level_and_handlers_come_back():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    with root_logging_kept():
        logging.basicConfig(level=logging.INFO, force=False)
        root.setLevel(logging.INFO)
        root.addHandler(logging.StreamHandler())
        assert root.level == logging.INFO
    assert root.level == level and root.handlers == handlers
