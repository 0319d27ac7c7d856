"""Compiled loops of the PDQ index (numba): the work that numpy can only do with many passes.

Each kernel writes hits into caller-provided arrays and returns how many it found; when that is
more than the arrays hold, the caller grows them and calls again. Python functions are wrapped
with ``numba.njit`` at import, so the same code runs, slowly, under coverage and debuggers.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_LOW32 = np.uint64(0xFFFFFFFF)


def _popcount_py(x: np.uint64) -> np.int64:
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


_popcount = numba.njit(inline="always")(_popcount_py)


def _chunk(words: NDArray[np.uint64], row: Any, table: int) -> np.uint64:
    """The 32-bit chunk ``table`` of a hash seen as four 64-bit words (little-endian halves)."""
    word: np.uint64 = words[row, table >> 1]
    return (word >> np.uint64(32 * (table & 1))) & _LOW32


_chunk_nb = numba.njit(inline="always")(_chunk)


def _emit(
    out_query: NDArray[np.int64],
    out_position: NDArray[np.int64],
    out_distance: NDArray[np.int16],
    found: int,
    query: int,
    position: int,
    distance: int,
) -> int:
    """Record a hit if there is room; count it either way, so the caller can grow and retry."""
    if found < out_query.shape[0]:
        out_query[found] = query
        out_position[found] = position
        out_distance[found] = distance
    return found + 1


_emit_nb: Any = numba.njit(inline="always")(_emit)


def _mih_search_py(
    queries: NDArray[np.uint64],
    words: NDArray[np.uint64],
    ids: NDArray[np.uint32],
    keys: NDArray[np.uint16],
    dirs: NDArray[np.uint32],
    masks: NDArray[np.int64],
    mask_bits: NDArray[np.int64],
    radii: NDArray[np.int64],
    threshold: int,
    low_bits: int,
    out_query: NDArray[np.int64],
    out_position: NDArray[np.int64],
    out_distance: NDArray[np.int16],
) -> int:
    """Multi-index search: a hash within ``threshold`` is within ``radii[j]`` on some chunk j.

    Table j lists positions sorted by chunk j; ``dirs`` indexes its high bits, ``keys`` holds its
    low bits, so probes read short contiguous runs and only survivors touch the hash array.
    Tables are the outer loop so each one stays in cache across the batch. A hit is reported by
    the first table that can see it, so no hit is reported twice.
    """
    n_tables = ids.shape[0]
    low_mask = (1 << low_bits) - 1
    starts = np.empty(masks.shape[0], np.int64)
    ends = np.empty(masks.shape[0], np.int64)
    found = 0
    for j in range(n_tables):
        radius = radii[j]
        if radius < 0:
            continue
        for qi in range(queries.shape[0]):
            chunk = np.int64(_chunk_nb(queries, qi, j))
            high = chunk >> low_bits
            low = chunk & low_mask
            probes = 0
            while probes < masks.shape[0] and mask_bits[probes] <= radius:
                cell = high ^ masks[probes]
                starts[probes] = dirs[j, cell]
                ends[probes] = dirs[j, cell + 1]
                probes += 1
            for p in range(probes):
                left = radius - mask_bits[p]
                for i in range(starts[p], ends[p]):
                    if _popcount(np.uint64(np.int64(keys[j, i]) ^ low)) > left:
                        continue
                    pos = np.int64(ids[j, i])
                    d = (
                        _popcount(words[pos, 0] ^ queries[qi, 0])
                        + _popcount(words[pos, 1] ^ queries[qi, 1])
                        + _popcount(words[pos, 2] ^ queries[qi, 2])
                        + _popcount(words[pos, 3] ^ queries[qi, 3])
                    )
                    if d > threshold:
                        continue
                    seen = False
                    for earlier in range(j):
                        if radii[earlier] < 0:
                            continue
                        diff = _chunk_nb(words, pos, earlier) ^ _chunk_nb(queries, qi, earlier)
                        if _popcount(diff) <= radii[earlier]:
                            seen = True
                            break
                    if seen:
                        continue
                    found = _emit_nb(out_query, out_position, out_distance, found, qi, pos, d)
    return found


def _scan_search_py(
    queries: NDArray[np.uint64],
    words: NDArray[np.uint64],
    threshold: int,
    block: int,
    out_query: NDArray[np.int64],
    out_position: NDArray[np.int64],
    out_distance: NDArray[np.int16],
) -> int:
    """Exhaustive search in blocks: each block of stored hashes is reused by every query."""
    found = 0
    n = words.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        for qi in range(queries.shape[0]):
            q0 = queries[qi, 0]
            q1 = queries[qi, 1]
            q2 = queries[qi, 2]
            q3 = queries[qi, 3]
            for pos in range(start, stop):
                d = (
                    _popcount(words[pos, 0] ^ q0)
                    + _popcount(words[pos, 1] ^ q1)
                    + _popcount(words[pos, 2] ^ q2)
                    + _popcount(words[pos, 3] ^ q3)
                )
                if d <= threshold:
                    found = _emit_nb(out_query, out_position, out_distance, found, qi, pos, d)
    return found


mih_search: Any = numba.njit(cache=True, nogil=True)(_mih_search_py)
scan_search: Any = numba.njit(cache=True, nogil=True)(_scan_search_py)
