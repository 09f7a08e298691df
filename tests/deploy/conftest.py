"""A llama.cpp server on 127.0.0.1 for the deploy tests (one per module), on the cached Q4_K_M GGUF
of the embedded model; 1 thread (the fastest on 2 busy cores). Stopped at the end of the module."""

import pytest


@pytest.fixture(scope="module")
def server():
    pytest.importorskip(
        "xllamacpp", reason='the deploy extra is not installed: pip install -e ".[deploy]"'
    )
    from llamalab import serve

    with serve("default", scheme="q4_k_m", parallel=8, context=256, threads=1) as s:
        yield s
    assert not s.alive
