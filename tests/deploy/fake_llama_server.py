"""A stand-in for llamalab.serving._server_main in tests/deploy/test_serve_races.py (never imported
by pytest): the same contract — config and key from the environment (popped), bind 127.0.0.1 at the
configured port (0: a free one), report {"event": "listening", "address": ...}, serve until stdin
closes — with no model. FAKE_SERVER_MODE picks how it behaves:

  honest    /health ok; every other path needs `Authorization: Bearer KEY` (401 without): llama.cpp
  careless  answers 200 {"status": "ok"} to everything, key or not (an impostor that checks nothing)
  lockout   /health ok; every other path 401, even with the right key (a server with another key)
  elsewhere binds nothing and reports FAKE_SERVER_ADDRESS (a port another process owns)

FAKE_SERVER_RECORD: a file it appends JSON lines to — its config, whether the key reached its
environment, and the Authorization header of every request it gets."""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECORD = os.environ.get("FAKE_SERVER_RECORD", "")


def record(**what) -> None:
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(json.dumps(what) + "\n")


def handler(mode: str, key: str, alias: str):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            auth = self.headers.get("Authorization", "")
            record(path=self.path, authorization=auth)
            if mode == "careless" or self.path == "/health":
                return self.answer(200, {"status": "ok", "data": [{"id": alias}]})
            if auth != f"Bearer {key}" or mode == "lockout":
                return self.answer(401, {"error": {"message": "Invalid API Key", "code": 401}})
            return self.answer(200, {"object": "list", "data": [{"id": alias}]})

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet: the Task's log shows only what the kit says
            pass

    return Handler


def main() -> int:
    cfg = json.loads(os.environ.pop("LLAMALAB_SERVER_CONFIG"))
    key = os.environ.pop("LLAMALAB_SERVER_KEY", "")
    mode = os.environ.get("FAKE_SERVER_MODE", "honest")
    record(config=cfg, got_key=bool(key), key_left_in_env=key in os.environ.values())
    print("fake server: starting", file=sys.stderr, flush=True)
    if mode == "elsewhere":
        address = os.environ["FAKE_SERVER_ADDRESS"]
    else:
        httpd = ThreadingHTTPServer(("127.0.0.1", cfg["port"]), handler(mode, key, cfg["alias"]))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        address = f"http://127.0.0.1:{httpd.server_address[1]}"
    print(json.dumps({"event": "listening", "address": address}), flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
