"""Serving: llama.cpp's own server as a process Task on 127.0.0.1 (server.py, its process
_server_main.py), and GGUF export with a measured check against the source (export.py)."""
