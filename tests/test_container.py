"""hardware() inside a container: the cgroup's memory limit and CPU quota (v1 and v2, nested levels,
a Docker path), read from fake cgroup trees and, as root, from a real child cgroup with a limit."""

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import llamalab
from llamalab.core import container, hardware
from llamalab.core.container import Limits

GiB = 2**30


def tree(tmp_path: Path, mountinfo: str, cgroup: str, files: dict) -> tuple[Path, Path]:
    """A fake /proc/self (mountinfo, cgroup) and file system root holding `files`."""
    proc, root = tmp_path / "proc", tmp_path / "root"
    proc.mkdir(parents=True)
    (proc / "mountinfo").write_text(textwrap.dedent(mountinfo).strip() + "\n")
    (proc / "cgroup").write_text(textwrap.dedent(cgroup).strip() + "\n")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return proc, root


V1_MOUNTS = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""


def test_v1_takes_the_lowest_limit_up_the_hierarchy_and_leaves_out_inactive_file_pages(tmp_path):
    mem, cpu = "sys/fs/cgroup/memory/pod", "sys/fs/cgroup/cpu,cpuacct/pod"
    proc, root = tree(
        tmp_path,
        V1_MOUNTS,
        "4:memory:/pod/box\n3:cpu,cpuacct:/pod/box\n0::/",
        {
            f"{mem}/memory.limit_in_bytes": str(2 * GiB),
            f"{mem}/box/memory.limit_in_bytes": "9223372036854771712",  # v1's "no limit"
            f"{mem}/box/memory.usage_in_bytes": str(GiB),
            f"{mem}/box/memory.stat": "cache 5\ntotal_inactive_file 268435456\nrss 7\n",
            f"{cpu}/box/cpu.cfs_quota_us": "150000",
            f"{cpu}/box/cpu.cfs_period_us": "100000",
            f"{cpu}/cpu.cfs_quota_us": "-1",
            f"{cpu}/cpu.cfs_period_us": "100000",
        },
    )
    lim = container.limits(proc, root)
    assert lim == Limits(2 * GiB, GiB - 256 * 2**20, 1.5, 1)
    assert lim.memory_available_bytes == GiB + 256 * 2**20
    assert container.usable_cpus(1.5) == min(2, len(os.sched_getaffinity(0)))


def test_v2_reads_memory_max_and_cpu_max_where_max_means_none(tmp_path):
    base = "sys/fs/cgroup/kubepods/pod1"
    proc, root = tree(
        tmp_path,
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate",
        "0::/kubepods/pod1/ctr",
        {
            f"{base}/memory.max": str(GiB),
            f"{base}/ctr/memory.max": "max",
            f"{base}/ctr/memory.current": str(600 * 2**20),
            f"{base}/ctr/memory.stat": "anon 1\ninactive_file 104857600\nactive_file 3\n",
            f"{base}/cpu.max": "max 100000",
            f"{base}/ctr/cpu.max": "100000 100000",
        },
    )
    assert container.limits(proc, root) == Limits(GiB, 500 * 2**20, 1.0, 2)


def test_a_private_cgroup_namespace_and_a_docker_path_resolve_inside_their_mount(tmp_path):
    v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw"
    proc, root = tree(tmp_path, v2, "0::/", {"sys/fs/cgroup/memory.max": str(2 * GiB)})
    assert container.limits(proc, root).memory_limit_bytes == 2 * GiB
    docker = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory"
    files = {"sys/fs/cgroup/memory/job/memory.limit_in_bytes": str(3 * GiB)}
    proc, root = tree(tmp_path / "d", docker, "4:memory:/docker/abc/job", files)
    assert container.limits(proc, root).memory_limit_bytes == 3 * GiB


def test_no_cgroup_files_means_no_limits(tmp_path):
    assert container.limits(tmp_path / "missing", tmp_path) == Limits()


def test_hardware_reports_the_container_not_the_host(monkeypatch):
    lim = Limits(2 * GiB, GiB // 2, 1.0, 2)
    monkeypatch.setattr(container, "limits", lambda: lim)
    hw = hardware.hardware()
    assert hw.ram_bytes == 2 * GiB and hw.container_limit_bytes == 2 * GiB
    assert hw.ram_available_bytes <= 1.5 * GiB and hw.cores == 1 and hw.cpu_quota == 1.0
    assert hw.host_ram_bytes > 2 * GiB
    assert f"2.0 GiB container limit of {hw.host_ram_bytes / GiB:.1f} GiB host" in str(hw)


CHILD = """
import json, llamalab
hw = llamalab.hardware()
try:
    llamalab.load("llama-3.2-1b", "fp32", device="cpu")
    refused = ""
except llamalab.LlamalabError as e:
    refused = type(e).__name__
print(json.dumps({"ram": hw.ram_bytes, "limit": hw.container_limit_bytes, "refused": refused,
                  "text": str(hw)}))
"""


def _own_memory_cgroup() -> Path | None:
    path = container._groups(Path("/proc/self/cgroup").read_text()).get("memory")
    if path is None:
        return None
    d = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    return d if d.is_dir() and os.access(d, os.W_OK) else None


@pytest.mark.slow  # two processes import torch (~10 s quiet)
def test_in_a_real_2_gib_child_cgroup_hardware_says_2_gib_and_load_refuses_a_1b_fp32():
    """As root on cgroup v1: a child of this process's memory cgroup limited to 2 GiB. A process
    moved into it sees the limit, and load() refuses Llama 3.2 1B in fp32 (~5 GB) with the kit's
    memory error; on the host the same call passes the memory check (and then needs the files)."""
    parent = _own_memory_cgroup()
    if parent is None:
        pytest.skip(
            "needs root and a writable cgroup v1 memory hierarchy (this CI machine has both)"
        )
    child = parent / f"llamalab-test-{uuid.uuid4().hex[:8]}"
    child.mkdir()
    try:
        (child / "memory.limit_in_bytes").write_text(str(2 * GiB))
        join = f"echo $$ > {child}/cgroup.procs && exec {sys.executable} -c '{CHILD}'"
        out = subprocess.run(["sh", "-c", join], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        seen = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        child.rmdir()
    assert seen["ram"] <= 2 * GiB and seen["limit"] == 2 * GiB, seen
    assert seen["refused"] == "NotEnoughMemory" and "container limit" in seen["text"], seen
    with pytest.raises(llamalab.LlamalabError) as outside:
        llamalab.load("llama-3.2-1b", "fp32", device="cpu")
    assert type(outside.value).__name__ != "NotEnoughMemory"
