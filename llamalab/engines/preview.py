"""The HTTP request a chat would send, shown and not sent: method, URL, headers with the key
redacted, and the JSON body. The key itself is never read here: the header says only where it
comes from (an environment variable's name, or the key of a server this process started)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

CONTENT_TYPE = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class RequestPreview:
    """One request as it would go on the wire: `method`, `url`, `headers` (any key redacted) and
    `body` (the JSON the engine builds for a real request)."""

    method: str
    url: str
    headers: dict = field(default_factory=dict)
    body: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"method": self.method, "url": self.url, "headers": self.headers, "body": self.body}

    def __str__(self) -> str:
        head = [f"{self.method} {self.url}", *(f"{k}: {v}" for k, v in self.headers.items())]
        return "\n".join(head) + "\n\n" + json.dumps(self.body, indent=2, ensure_ascii=False)


def redacted_headers(key_env: str | None = None, own_key: bool = False) -> dict:
    """The headers of a request, the Authorization value replaced by where its key comes from:
    `own_key` (a server this process started holds it in memory) or the variable `key_env`
    (whether it is set is said; its value is not read into the result)."""
    headers = dict(CONTENT_TYPE)
    if own_key:
        headers["Authorization"] = "Bearer <redacted: the key of the server this process started>"
    elif key_env:
        state = "set" if os.environ.get(key_env) else "NOT SET: export it before a real request"
        headers["Authorization"] = f"Bearer <redacted: ${key_env}, {state}>"
    return headers
