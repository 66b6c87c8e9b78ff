"""Peak resident memory of this process or another one, for the figures runs report."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def process_peak_rss_mb(pid: int) -> float:
    """Another process's peak resident memory (VmHWM) in MiB; 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0
