"""The PDQ and digest indexes are exact: every pair within the threshold, none beyond it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from gardien.hashing import index as index_module
from gardien.hashing.index import DigestIndex, HashIndexError, PdqIndex


def _random(rng: np.random.Generator, n: int, width: int = 32) -> NDArray[np.uint8]:
    return rng.integers(0, 256, (n, width), dtype=np.uint8)


def _flip(rng: np.random.Generator, rows: NDArray[np.uint8], most: int) -> NDArray[np.uint8]:
    """Copies of ``rows`` with 0..most random bits flipped each."""
    out = rows.copy()
    for row in out:
        for bit in rng.choice(256, int(rng.integers(0, most + 1)), replace=False):
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def _brute(stored: NDArray[np.uint8], queries: NDArray[np.uint8], t: int) -> set[tuple[int, int]]:
    words, qwords = stored.view(np.uint64), queries.view(np.uint64)
    pairs: set[tuple[int, int]] = set()
    for qi in range(queries.shape[0]):
        d = np.bitwise_count(words ^ qwords[qi]).sum(axis=1)
        pairs.update((qi, int(p)) for p in np.flatnonzero(d <= t))
    return pairs


def _pairs(hits: index_module.Hits) -> set[tuple[int, int]]:
    pairs = set(zip(hits.query.tolist(), hits.position.tolist(), strict=True))
    assert len(pairs) == len(hits), "a pair was reported twice"
    return pairs


@pytest.fixture(scope="module")
def stored() -> NDArray[np.uint8]:
    """Enough hashes for the multi-index tables (above SCAN_BELOW), with planted near-twins."""
    rng = np.random.default_rng(7)
    base = _random(rng, index_module.SCAN_BELOW + 5000)
    base[100:140] = _flip(rng, base[:40], 20)
    return base


@pytest.fixture(scope="module")
def queries(stored: NDArray[np.uint8]) -> NDArray[np.uint8]:
    rng = np.random.default_rng(8)
    near = _flip(rng, stored[rng.integers(0, stored.shape[0], 150)], 45)
    return np.vstack([near, stored[:20], _random(rng, 30)])


@pytest.mark.parametrize("threshold", [0, 1, 7, 16, 31, 32, 40])
def test_tables_are_exact(
    stored: NDArray[np.uint8], queries: NDArray[np.uint8], threshold: int
) -> None:
    index = PdqIndex.build(stored)
    assert index.directory_bits >= 16
    assert index._uses_tables(threshold)
    hits = index.search(queries, threshold)
    assert _pairs(hits) == _brute(stored, queries, threshold)
    words = stored.view(np.uint64)[hits.position] ^ queries.view(np.uint64)[hits.query]
    assert np.array_equal(np.bitwise_count(words).sum(axis=1), hits.distance)


@pytest.mark.parametrize("threshold", [0, 31, 90])
def test_scan_is_exact(threshold: int) -> None:
    rng = np.random.default_rng(3)
    stored = _random(rng, 3000)
    queries = np.vstack([_flip(rng, stored[:50], 40), _random(rng, 10)])
    index = PdqIndex.build(stored)
    assert not index._uses_tables(threshold)
    assert _pairs(index.search(queries, threshold)) == _brute(stored, queries, threshold)


def test_wide_threshold_falls_back_to_exact_scan(stored: NDArray[np.uint8]) -> None:
    index = PdqIndex.build(stored)
    assert not index._uses_tables(100)
    queries = stored[:3]
    assert _pairs(index.search(queries, 100)) == _brute(stored, queries, 100)


def test_many_hits_grow_the_output(stored: NDArray[np.uint8]) -> None:
    """More hits than the kernel's first output arrays hold are all returned."""
    same = np.repeat(stored[:1], 3000, axis=0)
    index = PdqIndex.build(np.vstack([same, stored]))
    hits = index.search(stored[:1], 0)
    assert len(hits) >= 3001


def test_saved_index_opens_memory_mapped(
    tmp_path: Path, stored: NDArray[np.uint8], queries: NDArray[np.uint8]
) -> None:
    built = PdqIndex.build(stored)
    built.save(tmp_path, "seg")
    opened = PdqIndex.open(tmp_path, "seg")
    assert isinstance(opened.hashes, np.memmap)
    assert len(opened) == len(built) and opened.nbytes == built.nbytes
    assert _pairs(opened.search(queries, 31)) == _pairs(built.search(queries, 31))
    assert not list(tmp_path.glob("*.partial"))


def test_small_index_saves_only_hashes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    stored = _random(rng, 10)
    PdqIndex.build(stored).save(tmp_path, "tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.hashes.npy", "tiny.json"]
    assert _pairs(PdqIndex.open(tmp_path, "tiny").search(stored, 0)) == {(i, i) for i in range(10)}


def test_broken_files_are_named(tmp_path: Path, stored: NDArray[np.uint8]) -> None:
    with pytest.raises(HashIndexError, match="missing manifest"):
        PdqIndex.open(tmp_path, "nothing")
    PdqIndex.build(stored).save(tmp_path, "seg")
    (tmp_path / "seg.ids.npy").unlink()
    with pytest.raises(HashIndexError, match=r"seg\.ids\.npy"):
        PdqIndex.open(tmp_path, "seg")
    manifest = tmp_path / "seg.json"
    manifest.write_text(json.dumps({"format": 99, "kind": "pdq"}))
    with pytest.raises(HashIndexError, match="format"):
        PdqIndex.open(tmp_path, "seg")
    index_module.remove_index_files(tmp_path, "seg")
    assert not list(tmp_path.iterdir())


def test_bad_queries_and_thresholds_are_refused(stored: NDArray[np.uint8]) -> None:
    index = PdqIndex.build(stored[:100])
    with pytest.raises(HashIndexError, match=r"shape \(n, 32\)"):
        index.search(np.zeros((2, 16), np.uint8))
    with pytest.raises(HashIndexError, match=r"0\.\.256"):
        index.search(stored[:1], -1)
    with pytest.raises(HashIndexError, match="uint8"):
        PdqIndex.build(np.zeros((3, 32), np.int32))  # type: ignore[arg-type]


def test_empty_index_and_empty_queries() -> None:
    index = PdqIndex.build(np.empty((0, 32), np.uint8))
    assert len(index.search(np.zeros((1, 32), np.uint8))) == 0
    assert len(PdqIndex.build(np.zeros((5, 32), np.uint8)).search(np.empty((0, 32), np.uint8))) == 0


@pytest.mark.parametrize("width", [16, 32])
def test_digest_index_finds_equal_digests_only(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(width)
    stored = _random(rng, 500, width)
    stored[400] = stored[3]  # a duplicate is found at both positions
    queries = np.vstack([stored[[3, 10, 499]], _random(rng, 5, width)])
    queries[-1] = stored[10]
    queries[-1, -1] ^= 1  # one bit off is no match
    index = DigestIndex.build(stored)
    expected = {(0, 3), (0, 400), (1, 10), (2, 499)}
    assert _pairs(index.search(queries)) == expected
    assert np.array_equal(index.hashes, stored)
    index.save(tmp_path, "d")
    assert _pairs(DigestIndex.open(tmp_path, "d").search(queries)) == expected
