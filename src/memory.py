"""How much memory this process can still use, and a number of bytes as a person reads it."""

from __future__ import annotations

import contextlib
import os
import resource
from pathlib import Path


def memory_available() -> int:
    """Bytes this process can still allocate: the kernel's MemAvailable, within a cgroup's limit
    and a SLURM task's memory, so that a job too large is refused, not killed."""
    available = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024  # its kB are KiB
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cgroup = Path("/sys/fs/cgroup")
    with contextlib.suppress(OSError, ValueError):
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            available = min(available, int(limit) - int((cgroup / "memory.current").read_text()))
    slurm_mb = os.environ.get("SLURM_MEM_PER_NODE")  # a SLURM task's limit, in MB
    if slurm_mb and slurm_mb.isdigit():
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # its KiB
        available = min(available, int(slurm_mb) * 2**20 - own)
    return available


def format_bytes(n: int) -> str:
    """1234567890 -> '1.2 GB' (GB: 10**9 bytes); from 1000 PB on, a power of ten of bytes."""
    if n >= 1e18:
        return f"{n:.1e} bytes"
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e6:.1f} MB"
