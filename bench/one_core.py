"""Benchmarks measure one core: pin the process to the first CPU it may use."""

from __future__ import annotations

import os


def pin_one_core() -> str:
    """Pin this process to one CPU; say where, for the printed figures."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to cpu {cpu}"
    except (AttributeError, OSError):
        return "not pinned"
