"""Engines: the one thing that differs between runtimes. `base` holds the protocol and the
capabilities an engine declares; one module per engine: transformers, llama.cpp in-process, an
OpenAI-compatible server, Ollama. Nothing here loads a model: the runtime's backends make
engines."""
