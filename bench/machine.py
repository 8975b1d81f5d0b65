"""The machine a benchmark ran on, named the same way by every bench script."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["cpu_model", "describe", "ram_gib"]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def ram_gib() -> str:
    """Total memory from /proc/meminfo, e.g. `24 GiB`."""
    try:
        kib = int(Path("/proc/meminfo").read_text(encoding="utf-8").split()[1])
    except (OSError, ValueError, IndexError):
        return "unknown RAM"
    return f"{kib / 1024 / 1024:.0f} GiB"


def describe() -> str:
    """`AMD EPYC 7B13, 2 cores, 24 GiB, Python 3.11.7, Linux`."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {ram_gib()}, Python {platform.python_version()}, {platform.system()}"
