"""The model-server process: llama.cpp's native server (xllamacpp) on 127.0.0.1 (or the host its
caller named), run by `serve()` as a process Task.

    python -m llamalab.serving._server_main   # settings in LLAMALAB_SERVER_CONFIG (JSON),
                                              # key in LLAMALAB_SERVER_KEY

It binds its port itself (port 0: a free one, llama.cpp's `--port 0`), loads the model, then reports
where it listens as one event line: {"event": "listening", "address": "http://127.0.0.1:PORT"}. Both
variables leave its environment before llama.cpp starts, so nothing it runs inherits the key;
the key is never printed. It serves until its stdin closes (the parent ended, even by a kill) or
SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    cfg = json.loads(os.environ.pop("LLAMALAB_SERVER_CONFIG"))
    key = os.environ.pop("LLAMALAB_SERVER_KEY", "")
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = cfg["gguf"]
    p.model_alias = {cfg["alias"]}
    p.hostnames = [cfg.get("host", "127.0.0.1")]  # another only when the caller named it
    p.port = cfg.get("port", 0)  # 0: the server binds a free port; listening_address says which
    p.n_parallel = cfg["parallel"]
    p.n_ctx = cfg["context"] * cfg["parallel"]  # llama.cpp splits n_ctx across the slots
    p.cont_batching = True
    p.endpoint_metrics = True
    p.cache_prompt = cfg.get("prompt_cache", True)  # a request's cache_prompt overrides it
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = cfg["threads"]
    if key:
        p.api_keys = [key]
    adapters = cfg.get("adapters", [])  # GGUF LoRA paths, ids 0.. in this order
    if adapters:
        p.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(path, 1.0) for path in adapters]
        p.lora_init_without_apply = True  # loaded at scale 0: POST /lora-adapters applies one
    # listens from here on (the model loaded); the HTTP loop runs on llama.cpp's own threads
    server = xllamacpp.Server(p)
    address = str(server.listening_address)
    print(json.dumps({"event": "listening", "address": address}), flush=True)
    sys.stdin.read()  # blocks until the parent closes the pipe or dies
    return 0


if __name__ == "__main__":
    sys.exit(main())
