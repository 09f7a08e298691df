"""What the kit's byte units mean, in one place.

GB is decimal (10**9 bytes), as memory is sold and as every estimate prints; GiB is binary
(2**30), as nvidia-smi (MiB), `free -h` and container limits show it. A "24 GB" RTX 4090 has
24564 MiB = 25.8 GB = 24.0 GiB. Where a learner compares the two, `both()` prints each.
"""

from __future__ import annotations

GB = 10**9
GiB = 2**30
MiB = 2**20


def both(n: float) -> str:
    """'25.76 GB (23.99 GiB)': a byte count in both units."""
    return f"{n / GB:.2f} GB ({n / GiB:.2f} GiB)"
