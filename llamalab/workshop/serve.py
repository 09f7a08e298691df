"""Serve course dashboards with Voilà: 127.0.0.1 unless an interface is given, always a token,
progressive rendering (plotly FigureWidgets go stale without it), and a template that serves its own
Font Awesome (no CDN) so icons draw offline."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from ..core import validate
from ..core.errors import BackendMissing, InvalidSetting
from ..course import dashboards_dir

HERE = Path(__file__).parent
DATA_DIR = HERE / "share" / "jupyter"  # holds voila/templates/llamalab-offline
TEMPLATE = "llamalab-offline"


def dashboards(folder=None) -> dict[str, Path]:
    """The dashboards a room can be served, by name (file stem)."""
    return {p.stem: p for p in sorted(Path(folder or dashboards_dir()).glob("*.ipynb"))}


def voila_command(
    dashboard: str,
    *,
    port: int = 8866,
    ip: str = "127.0.0.1",
    token: str | None = None,
    folder=None,
) -> tuple[list[str], dict, str]:
    """(argv, environment, token) that serve `dashboard` with Voilà."""
    try:
        import voila  # noqa: F401
    except ImportError:
        raise BackendMissing(
            "Voilà is not installed, so dashboards cannot be served.",
            'pip install "llamalab[workshop]"',
        ) from None
    known = dashboards(folder)
    if dashboard not in known:
        raise InvalidSetting(
            f"No dashboard called {dashboard!r}.",
            f"Use one of: {', '.join(known) or 'none found'}.",
        )
    validate.integer("port", port, 1, 65535)
    validate.text("ip", ip)
    token = token or secrets.token_hex(24)
    argv = [
        sys.executable,
        "-m",
        "voila",
        str(known[dashboard]),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={ip}",
        f"--token={token}",
        "--progressive_rendering=True",
        f"--template={TEMPLATE}",
        "--Voila.port_retries=0",
    ]
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(DATA_DIR), env.get("JUPYTER_PATH")]))
    env.setdefault("HF_HUB_OFFLINE", "1")
    return argv, env, token
