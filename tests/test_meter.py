"""MemoryMeter sees a block's own peak, not the process's lifetime maximum."""
from llamalab.runtime.meter import MemoryMeter

MB = 2**20


def test_peak_of_a_freed_block_and_growth_of_a_kept_one(resident_block):
    resident_block(120 * MB).close()   # an earlier, larger peak the meter must not report
    with MemoryMeter("cpu") as m:
        resident_block(60 * MB).close()   # freed inside the block: peak only
        kept = resident_block(20 * MB)
    assert m.kind == "process RSS growth"
    assert 55 * MB <= m.peak_growth_bytes < 110 * MB, m
    assert 15 * MB <= m.growth_bytes < 40 * MB, m
    kept.close()
