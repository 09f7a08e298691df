"""Memory by kind (llamalab/core/memory.py): anonymous vs file-backed resident memory, a mapped
file's address ranges and dropping its pages, and what a container counts (its cgroup's usage less
inactive file pages, limit or not), read from this process and from fake cgroup trees."""

import mmap
import textwrap
from pathlib import Path

from llamalab.core import container, memory

MB = 2**20


def mapped_file(path: Path, size: int) -> mmap.mmap:
    """`size` bytes of a file mapped and read page by page: file-backed RSS, no anonymous memory."""
    path.write_bytes(b"\1" * size)
    with open(path, "rb") as f:
        view = mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ)
    sum(view[i] for i in range(0, size, mmap.PAGESIZE))
    return view


def private_block(size: int) -> mmap.mmap:
    """Fresh private anonymous pages, each written once: anonymous RSS (the conftest's
    resident_block maps shared pages, which the kernel counts as shared memory)."""
    block = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for offset in range(0, size, mmap.PAGESIZE):
        block[offset] = 1
    return block


def test_kinds_add_up_to_rss_and_say_what_grew(tmp_path):
    before = memory.resident()
    assert before.rss_bytes == before.anon_bytes + before.file_bytes + before.shmem_bytes
    assert abs(before.rss_bytes - memory.rss_bytes()) < 16 * MB
    anon = private_block(40 * MB)
    view = mapped_file(tmp_path / "weights.bin", 40 * MB)
    after = memory.resident()
    assert after.anon_bytes - before.anon_bytes >= 35 * MB
    assert after.file_bytes - before.file_bytes >= 35 * MB
    view.close(), anon.close()


def test_a_mapped_file_is_found_and_its_pages_can_be_dropped(tmp_path):
    path = tmp_path / "model.safetensors"
    view = mapped_file(path, 32 * MB)
    ranges = memory.mapped_ranges(path)
    assert len(ranges) == 1 and ranges[0][1] - ranges[0][0] == 32 * MB
    held = memory.resident().file_bytes
    memory.drop_pages(ranges)
    assert held - memory.resident().file_bytes >= 28 * MB  # gone from this process's RSS
    assert view[5 * MB] == 1  # a mapped file's page comes back from the file when read again
    view.close()
    assert memory.mapped_ranges(path) == []


def test_growth_peak_and_samples_carry_the_kinds(tmp_path):
    with memory.Growth("cpu") as g:
        kept = private_block(30 * MB)
        view = mapped_file(tmp_path / "w.bin", 20 * MB)
    assert g.anon_bytes >= 25 * MB and 15 * MB <= g.file_bytes < 30 * MB, vars(g)
    assert g.anon_peak_bytes >= g.anon_bytes
    with memory.Peak("cpu") as p:
        p.monitor.sample()
    s = p.monitor.samples[-1]
    assert s.rss_anon_bytes > 0 and s.rss_file_bytes >= 15 * MB
    assert s.rss_bytes >= s.rss_anon_bytes + s.rss_file_bytes
    assert p.anon_bytes >= 25 * MB and p.file_bytes >= 15 * MB
    assert memory.CONTAINER in memory.KINDS and memory.ANON in memory.KINDS
    view.close(), kept.close()


def fake_cgroup(tmp_path: Path, mounts: str, cgroup: str, files: dict) -> tuple[Path, Path]:
    proc, root = tmp_path / "proc", tmp_path / "root"
    proc.mkdir(parents=True)
    (proc / "mountinfo").write_text(textwrap.dedent(mounts).strip() + "\n")
    (proc / "cgroup").write_text(cgroup + "\n")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return proc, root


def test_the_container_counts_usage_less_inactive_file_pages_with_no_limit(tmp_path):
    v1 = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory"
    box = "sys/fs/cgroup/memory/box"
    proc, root = fake_cgroup(
        tmp_path / "v1",
        v1,
        "4:memory:/box",
        {
            f"{box}/memory.limit_in_bytes": "9223372036854771712",  # no limit
            f"{box}/memory.usage_in_bytes": str(900 * MB),
            f"{box}/memory.stat": f"total_inactive_file {300 * MB}\ntotal_active_file 5\n",
        },
    )
    group = container.memory_group(proc, root)
    assert group.version == 1 and group.used_bytes() == 600 * MB
    assert container.limits(proc, root).memory_used_bytes is None  # no limit: nothing to subtract
    v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw"
    proc, root = fake_cgroup(
        tmp_path / "v2",
        v2,
        "0::/pod",
        {
            "sys/fs/cgroup/pod/memory.current": str(500 * MB),
            "sys/fs/cgroup/pod/memory.stat": f"anon 1\ninactive_file {100 * MB}\n",
        },
    )
    assert container.memory_group(proc, root).used_bytes() == 400 * MB
    assert container.memory_group(tmp_path / "none", tmp_path) is None
