"""Shared fixtures. Every test runs offline (HF_HUB_OFFLINE=1) on the embedded model or a model
built in the test; the converted embedded checkpoint is cached in LLAMALAB_CACHE across runs."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def embedded_dir():
    from llamalab import embedded
    return embedded.ensure_model()


@pytest.fixture(scope="session")
def bf16(embedded_dir):
    """The embedded model in bf16, loaded once per test session."""
    import llamalab
    m = llamalab.load("default", "bf16", device="cpu")
    yield m
    m.unload()


@pytest.fixture
def resident_block():
    """`resident_block(size)` → fresh anonymous pages, each written once, so RSS grows by `size`.

    bytearray() would be calloc'd (untouched pages) or served from heap memory the process already
    holds, so RSS need not move."""
    import mmap

    def make(size):
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        return block
    return make
