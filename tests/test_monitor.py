import threading
import time

import llamalab
from llamalab.monitor import Monitor, count_tokens


def test_samples_memory_and_tokens_per_second(resident_block):
    seen = []
    with Monitor(interval=0.05, on_sample=seen.append) as mon:
        for _ in range(20):
            count_tokens(5)
            time.sleep(0.01)
        block = resident_block(50 * 2**20)    # 50 MiB the sampler must see
        time.sleep(0.3)
    assert not mon.running and len(mon.samples) >= 4 and seen == mon.samples
    assert sum(s.tokens_per_s for s in mon.samples) > 0
    assert max(s.rss_bytes for s in mon.samples) - mon.samples[0].rss_bytes >= 40 * 2**20
    ts = [s.t for s in mon.samples]
    assert ts == sorted(ts) and all(s.cuda_allocated_bytes == 0 for s in mon.samples)
    block.close()


def test_tokens_counted_only_while_running():
    mon = Monitor(interval=10)
    count_tokens(100)                          # before start: not counted
    mon.start()
    count_tokens(7)
    mon.stop()
    assert mon.samples[-1].tokens_per_s > 0 and mon._tokens == 0
    count_tokens(50)                           # after stop: not counted
    assert mon._tokens == 0


def test_monitor_thread_is_a_daemon_and_stops():
    mon = Monitor(interval=0.01).start()
    assert any(t.name == "llamalab-monitor" and t.daemon for t in threading.enumerate())
    mon.stop()
    assert not any(t.name == "llamalab-monitor" for t in threading.enumerate())
    assert llamalab.Sample(0, 1).to_dict()["rss_bytes"] == 1
