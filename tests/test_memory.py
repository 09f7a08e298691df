"""The one memory probe (llamalab/core/memory.py): readings, a block's growth and peak, a
generation's peak, and the Monitor sampler of this or another process. Samples are taken by calling
`sample()` where the test needs one, not by sleeping for the sampler's thread."""

import subprocess
import sys
import threading

import llamalab
from llamalab.core import memory
from llamalab.core.memory import Monitor, count_tokens

MB = 2**20


def test_samples_memory_and_tokens_per_second(resident_block):
    seen = []
    mon = Monitor(
        interval=60, on_sample=seen.append
    ).start()  # the thread waits: samples come on demand
    count_tokens(5)
    first = mon.sample()
    block = resident_block(50 * MB)  # 50 MiB the sampler must see
    second = mon.sample()
    mon.stop()
    assert not mon.running and seen == mon.samples and len(seen) == 3  # stop() takes a last one
    assert first.tokens_per_s > 0 and second.tokens_per_s == 0
    assert second.rss_bytes - first.rss_bytes >= 40 * MB and mon.peak_rss_bytes >= second.rss_bytes
    assert first.t <= second.t and all(s.cuda_allocated_bytes == 0 for s in mon.samples)
    block.close()


def test_tokens_counted_only_while_running():
    mon = Monitor(interval=60)
    count_tokens(100)  # before start: not counted
    mon.start()
    count_tokens(7)
    mon.stop()
    assert mon.samples[-1].tokens_per_s > 0 and mon._tokens == 0
    count_tokens(50)  # after stop: not counted
    assert mon._tokens == 0


def test_monitor_thread_is_a_daemon_and_stops():
    mon = Monitor(interval=0.01).start()
    assert any(t.name == "llamalab-monitor" and t.daemon for t in threading.enumerate())
    mon.stop()
    assert not any(t.name == "llamalab-monitor" for t in threading.enumerate())
    assert llamalab.Sample(0, 1).to_dict()["rss_bytes"] == 1


def test_another_process_is_sampled_by_pid_and_its_end_is_seen():
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; b = bytearray(80 * 2**20); sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        mon = Monitor(interval=60, pid=child.pid)
        mon.start()
        s = mon.sample()
        assert s is None or s.tokens_per_s == 0  # None only if it has not started yet
        child.stdin.close()
        child.wait()
        assert mon.sample() is None and memory.rss_bytes(child.pid) is None
        mon.stop()
    finally:
        child.kill()


def test_growth_sees_a_blocks_own_peak_not_the_processs(resident_block):
    resident_block(120 * MB).close()  # an earlier, larger peak the probe must not report
    with memory.Growth("cpu") as m:
        resident_block(60 * MB).close()  # freed inside the block: peak only
        kept = resident_block(20 * MB)
    assert m.kind == memory.RSS_GROWTH
    assert 55 * MB <= m.peak_bytes < 110 * MB, vars(m)
    assert 15 * MB <= m.bytes < 40 * MB, vars(m)
    kept.close()


def test_peak_of_a_block_and_a_remote_engines_absent_figure(resident_block):
    with memory.Peak("cpu") as p:
        block = resident_block(40 * MB)
        p.monitor.sample()
    assert p.kind == memory.RSS_PEAK and p.bytes >= 40 * MB
    block.close()
    with memory.Peak("cpu", remote=True) as r:
        pass
    assert r.bytes is None and r.kind == memory.REMOTE


def test_reading_and_the_high_water_mark(resident_block):
    assert set(memory.reading("cpu")) == {
        "rss_bytes",
        "rss_anon_bytes",
        "rss_file_bytes",
        "rss_shmem_bytes",
        "container_bytes",
    }
    memory.reset_peak()
    before = memory.peak_bytes()
    resident_block(30 * MB).close()
    assert memory.peak_bytes() - before >= 25 * MB
