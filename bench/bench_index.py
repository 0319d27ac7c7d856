"""PDQ index benchmark: gardien.hashing.index.PdqIndex against faiss binary indexes, on one core.

For each size N, builds an index over N random 256-bit PDQ-like hashes with gardien's PdqIndex,
faiss IndexBinaryFlat(256) and faiss IndexBinaryMultiHash(256, 16 tables, 16 bits, nflip=1),
then range-searches a batch of queries at distance <= 31 (faiss's radius is strict, so it gets
32). Half of the queries are stored hashes with 0..31 random bits flipped (each has at least
one true match), half are fresh random hashes (almost never within 31 bits of anything).

Per index it prints build time, bytes per hash (gardien: PdqIndex.nbytes / N; faiss flat: 32,
its codes; all: the process's RSS growth across the build), single-query latency p50/p99
(queries one at a time), batched throughput (the whole batch in one call), and for gardien the
time to open a saved index (memory-mapped, page cache dropped with posix_fadvise where the
kernel allows) plus its first query. Results are checked against a chunked numpy brute force
on a sample of queries and against faiss flat on the whole batch; multi-hash recall is
reported. Prints figures; asserts nothing about speed.

    .venv/bin/python bench/bench_index.py [--sizes 1000000,10000000] [--queries 2000] [--seed N]
"""

from __future__ import annotations

import os

# One thread everywhere: these must be set before numpy, numba or faiss is imported.
for _name in (
    "OMP_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

import one_core  # noqa: E402
from gardien.hashing.index import PdqIndex  # noqa: E402

THRESHOLD = 31  # PDQ match: Hamming distance <= 31
TABLES, TABLE_BITS = 16, 16  # faiss multi-hash: 16 tables of 16 bits cover all 256 bits
# With 16 disjoint 16-bit substrings, distance <= 31 means some substring differs in <= 1 bit
# (16 substrings with >= 2 each would be >= 32), so nflip=1 finds every match.
NFLIP = 1
BRUTE_CHUNK = 1 << 20  # rows per chunk in the numpy brute force

Pairs = set[tuple[int, int]]
U8 = npt.NDArray[np.uint8]


# -- process setup and measurement helpers ---------------------------------------------------


def pin_one_core() -> str:
    faiss.omp_set_num_threads(1)
    return one_core.pin_one_core()


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def release() -> None:
    """Collect garbage and hand freed heap back to the kernel, so RSS deltas mean something."""
    gc.collect()
    _malloc_trim()


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no procfs: fall back to the peak, which only grows
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * (1 if sys.platform == "darwin" else 1024)


def drop_page_cache(directory: Path) -> bool:
    """Ask the kernel to forget the cached pages of every file under directory."""
    if not hasattr(os, "posix_fadvise"):
        return False
    dropped = True
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            dropped = False
        finally:
            os.close(fd)
    return dropped


# -- data -----------------------------------------------------------------------------------


def make_data(n: int, queries: int, seed: int) -> tuple[U8, U8, int]:
    """N random hashes; a shuffled query batch, half near-copies of stored hashes, half fresh."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 256, (n, 32), np.uint8)
    near = min(queries // 2, n)
    picked = rng.choice(n, near, replace=False) if near else np.empty(0, np.int64)
    bits = np.unpackbits(hashes[picked], axis=1)
    flips = rng.integers(0, THRESHOLD + 1, near)  # 0..31 distinct bits per query
    order = np.argsort(rng.random((near, 256)), axis=1)
    mask = np.zeros((near, 256), np.uint8)
    rows = np.arange(near)[:, None]
    mask[rows, order] = (np.arange(256)[None, :] < flips[:, None]).astype(np.uint8)
    near_queries = np.packbits(bits ^ mask, axis=1)
    fresh = rng.integers(0, 256, (queries - near, 32), np.uint8)
    batch = np.concatenate([near_queries, fresh])[rng.permutation(queries)]
    return hashes, np.ascontiguousarray(batch), near


def brute_force(hashes: U8, queries: U8) -> Pairs:
    """(query, position) pairs within THRESHOLD, by numpy popcount over uint64 views."""
    words = hashes.view(np.uint64)
    qwords = queries.view(np.uint64)
    pairs: Pairs = set()
    for start in range(0, len(words), BRUTE_CHUNK):
        chunk = words[start : start + BRUTE_CHUNK]
        for q in range(len(qwords)):
            dist = np.bitwise_count(chunk ^ qwords[q]).sum(axis=1, dtype=np.int32)
            for pos in np.flatnonzero(dist <= THRESHOLD):
                pairs.add((q, start + int(pos)))
    return pairs


# -- adapters: one search call -> set of (query, position) pairs ---------------------------


def gardien_pairs(hits: Any, offset: int = 0) -> Pairs:
    return {
        (offset + int(q), int(p))
        for q, p in zip(
            np.asarray(hits.query).tolist(), np.asarray(hits.position).tolist(), strict=True
        )
    }


def faiss_pairs(result: tuple[Any, Any, Any], offset: int = 0) -> Pairs:
    lims, _dist, ids = result
    pairs: Pairs = set()
    for q in range(len(lims) - 1):
        for p in ids[lims[q] : lims[q + 1]].tolist():
            pairs.add((offset + q, int(p)))
    return pairs


def gardien_searcher(index: Any) -> Callable[[U8], Any]:
    return lambda q: index.search(q, threshold=THRESHOLD)


def faiss_searcher(index: Any) -> Callable[[U8], Any]:
    return lambda q: index.range_search(q, THRESHOLD + 1)


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    build_s: float | None = None
    bytes_per_hash: float | None = None
    rss_per_hash: float | None = None
    open_s: float | None = None
    first_query_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    batch_qps: float | None = None
    pairs: Pairs = field(default_factory=set)
    note: str = ""


def single_latency(search: Callable[[U8], Any], queries: U8, count: int) -> tuple[float, float]:
    """p50 and p99 in ms, one query per call; the first call is a warm-up and not counted."""
    search(queries[:1])
    times = []
    for i in range(min(count, len(queries))):
        one = queries[i : i + 1]
        start = time.perf_counter()
        search(one)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def batched(raw_search: Callable[[U8], Any], queries: U8) -> tuple[float, Any]:
    start = time.perf_counter()
    result = raw_search(queries)
    seconds = time.perf_counter() - start
    return len(queries) / seconds, result


def measure_search(
    fig: Figures,
    raw_search: Callable[[U8], Any],
    to_pairs: Callable[[Any], Pairs],
    queries: U8,
    singles: int,
) -> None:
    fig.p50_ms, fig.p99_ms = single_latency(raw_search, queries, singles)
    fig.batch_qps, result = batched(raw_search, queries)
    fig.pairs = to_pairs(result)


# -- the runs -------------------------------------------------------------------------------


def warm_up_gardien(seed: int) -> float:
    """Build and query a tiny index once, so JIT compilation is not billed to the first size."""
    hashes, queries, _ = make_data(4096, 16, seed + 1)
    start = time.perf_counter()
    index = PdqIndex.build(hashes)
    index.search(queries, threshold=THRESHOLD)
    index.search(queries[:1], threshold=THRESHOLD)
    return time.perf_counter() - start


def run_gardien(hashes: U8, queries: U8, singles: int) -> list[Figures]:
    n = len(hashes)
    built = Figures("gardien")
    release()
    before = rss_bytes()
    start = time.perf_counter()
    index = PdqIndex.build(hashes)
    built.build_s = time.perf_counter() - start
    release()  # build temporaries can linger in the heap; count only what the index keeps
    built.rss_per_hash = (rss_bytes() - before) / n
    built.bytes_per_hash = index.nbytes / n
    stored = getattr(index, "hashes", None)
    if isinstance(stored, np.ndarray) and np.shares_memory(stored, hashes):
        built.note = "keeps the caller's hash array (no copy): RSS growth is its tables only"
    if len(index) != n:
        built.note += f"; len(index) = {len(index)}, expected {n}"
    measure_search(
        built,
        gardien_searcher(index),
        gardien_pairs,
        queries,
        singles,
    )

    opened = Figures("gardien (opened)")
    with tempfile.TemporaryDirectory(prefix="gardien-bench-index-") as tmp:
        directory = Path(tmp)
        index.save(directory, "bench")
        on_disk = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        del index
        release()
        cold = drop_page_cache(directory)
        opened.note = f"{on_disk / n:.1f} B/hash on disk; " + (
            "page cache dropped" if cold else "page cache NOT dropped"
        )
        before = rss_bytes()
        start = time.perf_counter()
        reopened = PdqIndex.open(directory, "bench")
        opened.open_s = time.perf_counter() - start
        start = time.perf_counter()
        reopened.search(queries[:1], threshold=THRESHOLD)
        opened.first_query_ms = (time.perf_counter() - start) * 1000
        opened.bytes_per_hash = reopened.nbytes / n
        measure_search(
            opened,
            gardien_searcher(reopened),
            gardien_pairs,
            queries,
            singles,
        )
        release()
        opened.rss_per_hash = (rss_bytes() - before) / n  # mapped pages touched by the searches
        del reopened
        release()
    return [built, opened]


def run_faiss(
    name: str, make: Callable[[], Any], hashes: U8, queries: U8, singles: int
) -> tuple[Figures, Any]:
    fig = Figures(name)
    release()
    before = rss_bytes()
    start = time.perf_counter()
    index = make()
    index.add(hashes)
    fig.build_s = time.perf_counter() - start
    release()
    fig.rss_per_hash = (rss_bytes() - before) / len(hashes)
    measure_search(fig, faiss_searcher(index), faiss_pairs, queries, singles)
    return fig, index


def make_multihash() -> Any:
    index = faiss.IndexBinaryMultiHash(256, TABLES, TABLE_BITS)
    index.nflip = NFLIP
    return index


# -- report ---------------------------------------------------------------------------------


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_table(figs: list[Figures]) -> None:
    rows: list[tuple[str, str, Callable[[Figures], float | None]]] = [
        ("build (s)", ".2f", lambda f: f.build_s),
        ("bytes/hash (arrays)", ".1f", lambda f: f.bytes_per_hash),
        ("RSS growth/hash (B)", ".1f", lambda f: f.rss_per_hash),
        ("open (ms)", ".2f", lambda f: None if f.open_s is None else f.open_s * 1000),
        ("first query (ms)", ".2f", lambda f: f.first_query_ms),
        ("single p50 (ms)", ".3f", lambda f: f.p50_ms),
        ("single p99 (ms)", ".3f", lambda f: f.p99_ms),
        ("batch (queries/s)", ",.0f", lambda f: f.batch_qps),
        ("matches (pairs)", "d", lambda f: len(f.pairs) if f.batch_qps is not None else None),
    ]
    width = max(14, *(len(f.name) for f in figs))
    print(f"  {'':<22}" + "".join(f" {f.name:>{width}}" for f in figs))
    for label, fmt, get in rows:
        cells = "".join(f" {_cell(get(f), fmt):>{width}}" for f in figs)
        print(f"  {label:<22}{cells}")
    for f in figs:
        if f.note:
            print(f"  note, {f.name}: {f.note}")


def compare(label: str, got: Pairs, want: Pairs) -> str:
    missing, extra = len(want - got), len(got - want)
    if not missing and not extra:
        return f"{label}: exact: yes ({len(want)} pairs)"
    return f"{label}: exact: NO ({missing} missing, {extra} extra of {len(want)} pairs)"


def restrict(pairs: Pairs, sample: Iterable[int]) -> Pairs:
    keep = set(sample)
    return {pair for pair in pairs if pair[0] in keep}


def ratio(slow: float | None, fast: float | None) -> str:
    if slow is None or fast is None or fast == 0:
        return "-"
    value = slow / fast
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def run_size(n: int, args: argparse.Namespace) -> None:
    print(f"\n== N = {n:,} hashes, {args.queries} queries, threshold {THRESHOLD} ==")
    start = time.perf_counter()
    hashes, queries, near = make_data(n, args.queries, args.seed)
    print(
        f"  data: {near} near-copy + {len(queries) - near} fresh queries "
        f"in {time.perf_counter() - start:.1f}s"
    )
    sample = np.random.default_rng(args.seed + 2).choice(
        len(queries), min(args.check, len(queries)), replace=False
    )
    start = time.perf_counter()
    truth_local = brute_force(hashes, queries[sample])
    truth = {(int(sample[q]), p) for q, p in truth_local}
    print(
        f"  brute force: {len(sample)} sampled queries, {len(truth)} pairs "
        f"in {time.perf_counter() - start:.1f}s"
    )

    figs = run_gardien(hashes, queries, args.single)
    release()

    flat, index = run_faiss(
        "faiss flat", lambda: faiss.IndexBinaryFlat(256), hashes, queries, args.single
    )
    flat.bytes_per_hash = index.code_size * index.ntotal / n
    del index
    release()
    figs.append(flat)

    multi: Figures | None = None
    if n <= args.skip_multihash_above:
        multi, index = run_faiss("faiss multihash", make_multihash, hashes, queries, args.single)
        multi.bytes_per_hash = None  # hash maps are not introspectable; see the RSS growth
        multi.note = f"{TABLES} tables x {TABLE_BITS} bits, nflip={NFLIP}"
        del index
        release()
        figs.append(multi)
    else:
        print(f"  faiss multihash skipped (N > --skip-multihash-above {args.skip_multihash_above})")

    print()
    print_table(figs)

    print("\n  correctness")
    gardien, opened = figs[0], figs[1]
    for line in (
        compare("gardien vs brute force (sample)", restrict(gardien.pairs, sample), truth),
        compare("gardien vs faiss flat (whole batch)", gardien.pairs, flat.pairs),
        compare("gardien opened vs built (whole batch)", opened.pairs, gardien.pairs),
        compare("faiss flat vs brute force (sample)", restrict(flat.pairs, sample), truth),
    ):
        print("   " + line)
    if multi is not None:
        found = len(multi.pairs & flat.pairs)
        recall = found / len(flat.pairs) if flat.pairs else 1.0
        sampled = restrict(multi.pairs, sample)
        sample_recall = len(sampled & truth) / len(truth) if truth else 1.0
        print(
            f"   faiss multihash recall: {recall:.4f} vs faiss flat ({found}/{len(flat.pairs)}), "
            f"{sample_recall:.4f} vs brute force (sample); "
            f"{len(multi.pairs - flat.pairs)} extra"
        )

    print("\n  speed-ups of gardien (built) over")
    others = [flat] + ([multi] if multi is not None else [])
    for other in others:
        print(
            f"   {other.name:<16} single p50 {ratio(other.p50_ms, gardien.p50_ms):>8}, "
            f"p99 {ratio(other.p99_ms, gardien.p99_ms):>8}, "
            f"batched {ratio(gardien.batch_qps, other.batch_qps):>8}, "
            f"build {ratio(other.build_s, gardien.build_s):>8}"
        )
    del hashes, queries
    release()


def parse_sizes(text: str) -> list[int]:
    sizes = [int(float(part)) for part in text.replace("_", "").split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers, comma-separated")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[1_000_000, 10_000_000],
        help="comma-separated index sizes (1000000,10000000)",
    )
    parser.add_argument("--queries", type=int, default=2000, help="query batch size (2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--single", type=int, default=200, help="queries timed one at a time (200)")
    parser.add_argument("--check", type=int, default=50, help="queries checked by brute force (50)")
    parser.add_argument(
        "--skip-multihash-above",
        type=int,
        default=20_000_000,
        metavar="N",
        help="skip faiss IndexBinaryMultiHash for sizes above N (20000000)",
    )
    args = parser.parse_args(argv)
    if args.queries < 2:
        parser.error("--queries must be at least 2")

    pinned = pin_one_core()
    print("PDQ index: gardien PdqIndex vs faiss IndexBinaryFlat / IndexBinaryMultiHash")
    print(
        f"  Python {platform.python_version()}, {platform.machine()}, numpy {np.__version__}, "
        f"faiss {faiss.__version__}, {pinned}, faiss threads {faiss.omp_get_max_threads()}"
    )
    print(f"  gardien warm-up (tiny build + search, JIT): {warm_up_gardien(args.seed):.2f}s")
    for n in args.sizes:
        run_size(n, args)
    print(f"\n  peak RSS of the process: {peak_rss_bytes() / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
