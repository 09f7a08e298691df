"""What a simulated learner does on the room's hub, over its REST API (JupyterHub's
docs/source/_static/rest-api.yml) and the learner's Jupyter server (jupyter_server's contents,
sessions and kernel websocket channels): sign in, start a server, open a notebook and run its cells
one by one, as JupyterLab does.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.errors import LlamalabError

PROTOCOL = "5.3"  # Jupyter messaging protocol version the execute requests speak


class HubRequestError(LlamalabError):
    """The hub or a learner's server refused a request or did not answer."""


@dataclass
class CellRun:
    """One notebook run in a learner's kernel: how long, which cells failed, and why."""

    wall_s: float = 0.0
    cells: int = 0
    errors: list[str] = field(default_factory=list)
    kernel_died: bool = False
    stdout: str = ""


class HubClient:
    """The hub's REST API with a token (a service's admin token, or a learner's)."""

    def __init__(self, url: str, token: str, timeout: float = 30.0):
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(
            headers={"Authorization": f"token {token}"}, timeout=timeout, follow_redirects=False
        )

    def api(self, method: str, path: str, ok=(200, 201, 202, 204), **kwargs):
        import httpx

        try:
            r = self.http.request(method, f"{self.url}/hub/api{path}", **kwargs)
        except httpx.HTTPError as e:
            raise HubRequestError(
                f"The hub at {self.url} did not answer {method} {path}: {e}.",
                "Check that the hub still runs (its log: Hub.task.log_path).",
            ) from None
        if r.status_code not in ok:
            raise HubRequestError(
                f"The hub answered {method} {path} with {r.status_code}: {r.text[:300]}",
                "Check the hub's log; the admin token needs the room service's scopes.",
            )
        return r.json() if r.content else None

    def up(self) -> bool:
        """The hub answers through its proxy."""
        try:
            return self.http.get(f"{self.url}/hub/api/").status_code == 200
        except Exception:
            return False

    def create_users(self, names: list[str]) -> None:
        self.api("POST", "/users", json={"usernames": names, "admin": False}, ok=(201, 409))

    def start_server(self, name: str, timeout: float = 180.0) -> float:
        """Start `name`'s server and wait until the hub says it is ready; the seconds it took."""
        t0 = time.monotonic()
        self.api("POST", f"/users/{name}/server", ok=(201, 202, 400))  # 400: already running
        while time.monotonic() - t0 < timeout:
            server = self.api("GET", f"/users/{name}").get("servers", {}).get("")
            if server and server.get("ready"):
                return time.monotonic() - t0
            if server is None and time.monotonic() - t0 > 5:
                raise HubRequestError(
                    f"{name}'s server stopped while starting.",
                    "Read the hub's log (a spawn error, or the memory limit too small).",
                )
            time.sleep(0.5)
        raise HubRequestError(
            f"{name}'s server was not ready in {timeout:.0f} s.", "Give it longer."
        )

    def token_for(self, name: str) -> str:
        """A one-hour token acting as `name` (their server's API accepts it)."""
        body = {"expires_in": 3600, "note": "llamalab simulated learner"}
        return self.api("POST", f"/users/{name}/tokens", json=body)["token"]

    def stop_server(self, name: str) -> None:
        self.api("DELETE", f"/users/{name}/server", ok=(202, 204, 400, 404))

    def stop_all(self) -> None:
        """Stop every running learner's server and wait until each has stopped."""
        users = self.api("GET", "/users", params={"state": "active"}) or []
        names = [u["name"] for u in users if u.get("servers")]
        for name in names:
            self.stop_server(name)
        deadline = time.monotonic() + 60
        while names and time.monotonic() < deadline:
            names = [n for n in names if self.api("GET", f"/users/{n}").get("servers")]
            time.sleep(0.25)

    def login(self, name: str, password: str) -> bool:
        """Sign in at /hub/login as a browser does (form + XSRF cookie); True if accepted."""
        import httpx

        with httpx.Client(timeout=30, follow_redirects=False) as browser:
            page = browser.get(f"{self.url}/hub/login")
            xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
            form = {"username": name, "password": password, **({"_xsrf": xsrf[1]} if xsrf else {})}
            r = browser.post(f"{self.url}/hub/login", data=form)
            return r.status_code == 302 and "jupyterhub-session-id" in browser.cookies


def run_notebook(hub_url: str, user: str, token: str, nb: dict, timeout: float = 600.0,
                 before_cell: Callable[[int], None] | None = None) -> CellRun:  # fmt: skip
    """Put notebook `nb` into `user`'s folder, open it in a kernel (a session, as JupyterLab does)
    and execute its code cells in order, stopping at the first error; then shut the session down.
    before_cell(n): called before code cell n (from 1) is sent, with the kernel up."""
    import httpx

    base = f"{hub_url.rstrip('/')}/user/{user}/api"
    headers = {"Authorization": f"token {token}"}
    path = nb.get("metadata", {}).get("llamalab_name", "notebook.ipynb")
    with httpx.Client(headers=headers, timeout=60) as http:
        body = {"type": "notebook", "format": "json", "content": nb}
        _check(http.put(f"{base}/contents/{path}", json=body), "upload the notebook")
        session = {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
        opened = _check(http.post(f"{base}/sessions", json=session), "start a kernel")
        try:
            return _execute(base, opened["kernel"]["id"], headers, nb, timeout, before_cell)
        finally:
            _shut_down(http, f"{base}/sessions/{opened['id']}")


def _shut_down(http, session_url: str, wait_s: float = 60.0) -> None:
    """Delete the session and its kernel. The server refuses (500) while the kernel restarts
    after a kill; asked again until it is gone, else the next session on this path would be
    handed the half-restarted kernel."""
    deadline = time.monotonic() + wait_s
    while http.delete(session_url).status_code >= 500 and time.monotonic() < deadline:
        time.sleep(0.5)


def run_code(hub_url: str, user: str, token: str, code: str, timeout: float = 120.0) -> CellRun:
    """One cell of `code` in a fresh kernel of `user`'s server."""
    cell = {"cell_type": "code", "source": code, "metadata": {}, "outputs": [],
            "execution_count": None}  # fmt: skip
    nb = {"cells": [cell], "metadata": {"llamalab_name": "cell.ipynb"}, "nbformat": 4,
          "nbformat_minor": 5}  # fmt: skip
    return run_notebook(hub_url, user, token, nb, timeout)


def _execute(base: str, kernel_id: str, headers: dict, nb: dict, timeout: float,
             before_cell: Callable[[int], None] | None) -> CellRun:  # fmt: skip
    import websocket

    ws_url = base.replace("http", "ws", 1) + f"/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(ws_url, header=[f"{k}: {v}" for k, v in headers.items()],
                                     timeout=timeout)  # fmt: skip
    run, session, t0 = CellRun(), uuid.uuid4().hex, time.monotonic()
    try:
        error = _wait_ready(ws, session, t0 + timeout)
        for cell in nb["cells"] if error is None else []:
            if cell["cell_type"] != "code":
                continue
            run.cells += 1
            if before_cell is not None:
                before_cell(run.cells)
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            error = _one_cell(ws, session, source, t0 + timeout, run)
            if error:
                break
        if error:
            run.errors.append(error)
            run.kernel_died = error.startswith("kernel ")
    finally:
        ws.close()
    run.wall_s = time.monotonic() - t0
    return run


def _send(ws, session: str, msg_type: str, content: dict) -> str:
    """One request on the shell channel; its msg_id."""
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "session": session, "username": "learner", "date": "",
              "msg_type": msg_type, "version": PROTOCOL}  # fmt: skip
    ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                        "channel": "shell", "buffers": [], "content": content}))  # fmt: skip
    return msg_id


def _recv(ws, deadline: float) -> dict | None:
    """The next kernel message, or None at the deadline or when the server closes the socket.
    Pings are returned to this loop: the server pings every 30 s, and a receive that answered
    them itself would wait past any deadline for a kernel that never speaks."""
    import websocket

    while (left := deadline - time.monotonic()) > 0:
        ws.settimeout(left)
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except (websocket.WebSocketTimeoutException, websocket.WebSocketConnectionClosedException):
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return None
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return json.loads(frame.data)
    return None


def _died(msg: dict) -> str | None:
    """'kernel restarting/dead …' when `msg` says the kernel died, else None."""
    state = msg.get("content", {}).get("execution_state")
    if msg.get("msg_type") == "status" and state in ("restarting", "dead"):
        return f"kernel {state} (killed: out of memory?)"
    return None


def _wait_ready(ws, session: str, deadline: float) -> str | None:
    """Ask kernel_info until the kernel answers (the server stops its own asking after 60 s, and
    a kernel still starting then would miss a cell sent at once); an error, else None."""
    while time.monotonic() < deadline:
        msg_id = _send(ws, session, "kernel_info_request", {})
        asked = time.monotonic()
        while time.monotonic() - asked < 2.0:
            msg = _recv(ws, min(deadline, asked + 2.0))
            if msg is None:
                break
            if died := _died(msg):
                return died
            ours = msg.get("parent_header", {}).get("msg_id") == msg_id
            if ours and msg.get("msg_type") == "kernel_info_reply":
                return None
    return "the kernel did not answer kernel_info in the notebook's time limit"


def _one_cell(ws, session: str, source: str, deadline: float, run: CellRun) -> str | None:
    """Send one execute_request; the error it raised (or the kernel's death), else None. What it
    prints goes to run.stdout."""
    content = {"code": source, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}  # fmt: skip
    msg_id = _send(ws, session, "execute_request", content)
    error = None
    while (msg := _recv(ws, deadline)) is not None:
        if died := _died(msg):
            return died
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg.get("msg_type"), msg.get("content", {})
        if kind == "stream" and content.get("name") == "stdout":
            run.stdout += content.get("text", "")
        if kind == "error":
            error = f"{content.get('ename')}: {content.get('evalue')}"
        if kind == "status" and content.get("execution_state") == "idle":
            return error
    return f"cell {run.cells} still running at the notebook's time limit"


def _check(r, what: str) -> dict:
    if r.status_code >= 400:
        raise HubRequestError(
            f"The learner's server refused to {what}: {r.status_code} {r.text[:300]}",
            "Check the server's log in the hub's log.",
        )
    return r.json()
