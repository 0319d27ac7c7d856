"""Hash banks on disk: the store's metadata plus one memory-mapped index per segment.

A bank grows by segments: every import writes one new index and records it, so adding never
rebuilds what is there. Removing a hash marks it (a tombstone) in its segment. ``compact`` folds a
bank's segments into one when many small imports have piled up. Index files are written before
the database records them and deleted only after the record is gone, so a crash leaves at worst
an unreferenced file, never a record without its file.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, TextIO

import numpy as np
from numpy.typing import NDArray

from gardien.hashing import exchange
from gardien.hashing.hashers import hash_file
from gardien.hashing.index import (
    TABLES,
    DigestIndex,
    HashIndexError,
    Hits,
    PdqIndex,
    remove_index_files,
)
from gardien.hashing.signals import (
    MAX_KEPT_ERRORS,
    SIGNAL_BYTES,
    HashListError,
    LineError,
    iter_csv_metadata,
    parse_hash,
    read_csv_list,
    read_text_list,
    sniff_format,
    write_csv_list,
    write_text_list,
)
from gardien.hashing.store import Bank, BankError, BankStore, Segment
from gardien.home import gardien_database_url, gardien_home
from gardien.media import MediaError, iter_media_paths

__all__ = [
    "DEFAULT_THRESHOLD",
    "BankMatcher",
    "HashBanks",
    "ImportReport",
    "Match",
    "QueryResult",
    "check_options",
    "nearest_first",
]

DEFAULT_THRESHOLD: Final = 31
"""PDQ distance at or under which two hashes match: Meta's recommendation and HMA's default."""
MAX_MATCHES: Final = 100
"""Matches listed per query, nearest first; the rest are counted."""
MAX_THRESHOLD: Final = 64
"""Widest PDQ threshold accepted: unrelated images sit about 128 bits apart, and wider searches
list much of a bank."""
MIN_KEPT_ON_REFETCH: Final = 0.5
"""A full fetch bringing fewer than this share of a synced bank's hashes needs allow_shrink."""
MIN_PDQ_QUALITY: Final = 50
"""PDQ hashes of lower quality are not stored or matched (python-threatexchange's threshold)."""

Index = PdqIndex | DigestIndex
Progress = Callable[[int], None]


@dataclass
class ImportReport:
    """What an import did: hashes added to which segment, and the inputs it could not use."""

    bank: str
    added: int
    segment: int | None
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    """All the inputs skipped; ``errors`` keeps the first ones."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "added": self.added,
            "segment": self.segment,
            "skipped": self.error_count,
        }


@dataclass
class _Input:
    """One list or image set, read and checked but not yet stored."""

    hashes: NDArray[np.uint8]
    metadata: Callable[[], Iterable[tuple[int, dict[str, Any]]]] | None
    errors: list[LineError]
    error_count: int


@dataclass(frozen=True)
class Match:
    """A stored hash within its bank's threshold of a query."""

    bank: str
    kind: str
    hash: str
    distance: int
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "hash": self.hash,
            "distance": self.distance,
            "metadata": self.metadata,
        }


@dataclass
class QueryResult:
    """Matches of one query, nearest first.

    A hit in an allow-list bank suppresses the block matches that are no nearer than it: those
    move to ``suppressed``, and the allow hits are listed in ``allowed_by``, so the outcome is
    explained. A block match nearer than every allow hit stands. ``more`` counts matches left
    out beyond :data:`MAX_MATCHES` per query.
    """

    matches: list[Match] = field(default_factory=list)
    allowed_by: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)
    more: int = 0

    def settle(self) -> None:
        """Apply allow-list suppression, sort, and keep the nearest :data:`MAX_MATCHES`."""
        allowed = [m for m in self.matches if m.kind == "allow"]
        blocks = [m for m in self.matches if m.kind != "allow"]
        self.allowed_by = nearest_first([*self.allowed_by, *allowed])
        if self.allowed_by:
            nearest_allow = self.allowed_by[0].distance
            self.suppressed = nearest_first(
                [*self.suppressed, *(m for m in blocks if m.distance >= nearest_allow)]
            )
            blocks = [m for m in blocks if m.distance < nearest_allow]
        blocks = nearest_first(blocks)
        self.more += max(0, len(blocks) - MAX_MATCHES)
        self.matches = blocks[:MAX_MATCHES]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"matches": [m.to_dict() for m in self.matches]}
        if self.more:
            out["more"] = self.more
        if self.allowed_by:
            out["allowed_by"] = [m.to_dict() for m in self.allowed_by[:MAX_MATCHES]]
        if self.suppressed:
            out["suppressed"] = [m.to_dict() for m in self.suppressed[:MAX_MATCHES]]
        return out


def nearest_first(matches: Iterable[Match]) -> list[Match]:
    """One entry per (bank, hash) at its smallest distance, nearest first."""
    best: dict[tuple[str, str], Match] = {}
    for m in matches:
        key = (m.bank, m.hash)
        if key not in best or m.distance < best[key].distance:
            best[key] = m
    return sorted(best.values(), key=lambda m: (m.distance, m.bank, m.hash))


def _build(signal_type: str, hashes: NDArray[np.uint8], progress: Progress | None = None) -> Index:
    if signal_type == "pdq":
        return PdqIndex.build(hashes, progress)
    return DigestIndex.build(hashes)


def _open(signal_type: str, directory: Path, stem: str) -> Index:
    if signal_type == "pdq":
        return PdqIndex.open(directory, stem)
    return DigestIndex.open(directory, stem)


def _hex(rows: NDArray[np.uint8]) -> list[str]:
    return [bytes(row).hex() for row in rows]


class HashBanks:
    """The banks under one home directory (``GARDIEN_HOME`` or a per-user data directory).

    Their metadata is in SQLite in the home, or in the database ``database_url`` (else
    ``GARDIEN_DATABASE_URL``) names; their segment files are in the home either way.
    """

    def __init__(self, home: Path | None = None, database_url: str | None = None) -> None:
        self.home = gardien_home(home)
        self.store = BankStore(self.home, url=gardien_database_url(database_url))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> HashBanks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- banks

    def create(self, name: str, signal_type: str = "pdq", **options: Any) -> Bank:
        return self.store.create_bank(name, signal_type, **options)

    def get(self, name: str) -> Bank:
        return self.store.get_bank(name)

    def list_banks(self) -> list[Bank]:
        return self.store.list_banks()

    def remove(self, name: str) -> None:
        """Delete a bank, then its files (after the record is gone)."""
        for file in self.store.remove_bank(name):
            self._remove_files(file)

    def _paths(self, file: str) -> tuple[Path, str]:
        path = self.home / file
        return path.parent, path.name

    def _remove_files(self, file: str) -> None:
        directory, stem = self._paths(file)
        remove_index_files(directory, stem)

    def open_segment(self, bank: Bank, segment: Segment) -> Index:
        directory, stem = self._paths(segment.file)
        index = _open(bank.signal_type, directory, stem)
        if len(index) != segment.count:
            raise HashIndexError(
                f"bank {bank.name!r} segment {segment.id}: {len(index)} hashes on disk, "
                f"{segment.count} recorded"
            )
        return index

    # -- adding and removing

    def _write_segment(
        self, signal_type: str, hashes: NDArray[np.uint8], progress: Progress | None = None
    ) -> str:
        """Build and save an index for ``hashes``; the caller records it or removes it."""
        width = SIGNAL_BYTES[signal_type]
        if hashes.ndim != 2 or hashes.shape[1] != width or hashes.dtype != np.uint8:
            raise BankError(
                f"{signal_type} hashes are {width} bytes; "
                f"got an array of {hashes.dtype} {hashes.shape}"
            )
        stem = uuid.uuid4().hex
        file = f"segments/{stem}"
        directory, _ = self._paths(file)
        try:
            _build(signal_type, hashes, progress).save(directory, stem)
        except BaseException:
            remove_index_files(directory, stem)
            raise
        return file

    def add_hashes(
        self,
        bank_name: str,
        hashes: NDArray[np.uint8],
        metadata: Iterable[tuple[int, dict[str, Any]]] | None = None,
    ) -> Segment | None:
        """Add hashes as one new segment: index files first, then the record.

        The index is built before any transaction starts, so other writers are not held up.
        """
        bank = self.store.get_bank(bank_name)
        if not hashes.shape[0]:
            return None
        file = self._write_segment(bank.signal_type, hashes)
        try:
            return self.store.add_segment(bank.name, file, int(hashes.shape[0]), metadata)
        except BaseException:
            self._remove_files(file)
            raise

    def import_files(
        self,
        bank_name: str,
        lists: Sequence[Path] = (),
        images: Sequence[Path] = (),
        *,
        format: str = "auto",
        skip_invalid: bool = False,
        progress: Progress | None = None,
        create: dict[str, Any] | None = None,
        indexing: Callable[[int], Progress] | None = None,
    ) -> ImportReport:
        """Import hash lists (text or CSV) and images into one new segment, all or nothing.

        Everything is read and checked before anything is written: one bad line or unusable
        image imports nothing (and every problem is reported), unless ``skip_invalid``.
        ``create`` holds the options of a bank to create in the same transaction if it does
        not exist; given for an existing bank, they must agree with it. ``progress`` is told of
        each image hashed; ``indexing(steps)``, if given, returns a callback told of each step
        of building the index.
        """
        existing = self._bank_for_import(bank_name, create)
        signal_type = existing.signal_type if existing else str((create or {})["signal_type"])
        inputs = [self._read_list(signal_type, path, format) for path in lists]
        if images:
            inputs.append(self._read_images(signal_type, images, progress))
        errors = [e for i in inputs for e in i.errors]
        error_count = sum(i.error_count for i in inputs)
        if error_count and not skip_invalid:
            raise HashListError(errors[:MAX_KEPT_ERRORS], error_count)
        width = SIGNAL_BYTES[signal_type]
        hashes = np.concatenate([i.hashes for i in inputs] or [np.empty((0, width), np.uint8)])
        file = None
        if hashes.shape[0]:
            step = indexing(TABLES) if indexing and signal_type == "pdq" else None
            file = self._write_segment(signal_type, hashes, step)
        try:
            with self.store.transaction():
                bank = existing or self.store.create_bank(bank_name, **(create or {}))
                segment = None
                if file:
                    segment = self.store.add_segment(
                        bank.name, file, int(hashes.shape[0]), _chained(inputs)
                    )
        except BaseException:
            if file:
                self._remove_files(file)
            raise
        return ImportReport(
            bank.name,
            int(hashes.shape[0]),
            segment.id if segment else None,
            errors[:MAX_KEPT_ERRORS],
            error_count,
        )

    def _bank_for_import(self, name: str, create: dict[str, Any] | None) -> Bank | None:
        """The bank to import into, or None when ``create`` says how to make it."""
        existing = {b.name: b for b in self.store.list_banks()}
        if name in existing:
            bank = existing[name]
            check_options(bank, create or {})
            if self.store.get_sync(name) is not None:
                raise BankError(
                    f"bank {name!r} is fed by an exchange (gardien bank sync), which replaces "
                    "its contents; import into another bank"
                )
            return bank
        if create is None or not create.get("signal_type"):
            raise BankError(
                f"no bank named {name!r}; to create it, say what it holds (--type pdq|md5|sha256)"
            )
        return None

    def _read_list(self, signal_type: str, path: Path, format: str) -> _Input:
        kind = sniff_format(path) if format == "auto" else format
        if kind == "csv":
            listed = read_csv_list(path, signal_type, skip_invalid=True)
            lines = listed.lines

            def metadata() -> Iterable[tuple[int, dict[str, Any]]]:
                return iter_csv_metadata(path, signal_type, lines)

            return _Input(listed.hashes, metadata, listed.errors, listed.error_count)
        if kind == "text":
            listed = read_text_list(path, signal_type, skip_invalid=True)
            return _Input(listed.hashes, None, listed.errors, listed.error_count)
        raise BankError(f"{path}: unknown list format {kind!r} (text, csv)")

    def _read_images(
        self, signal_type: str, paths: Sequence[Path], progress: Progress | None
    ) -> _Input:
        """Hash images; PDQ hashes under quality 50 are refused, as python-threatexchange does:
        a flat or tiny image hashes to a near-constant value that would match other such images."""
        rows: list[bytes] = []
        notes: list[dict[str, Any]] = []
        errors: list[LineError] = []
        for path in paths:
            try:
                hashes = hash_file(path)
                if signal_type == "pdq" and hashes.pdq_quality < MIN_PDQ_QUALITY:
                    raise MediaError(
                        f"{path}: PDQ quality {hashes.pdq_quality} is under {MIN_PDQ_QUALITY}, "
                        "too flat or small to match reliably"
                    )
            except MediaError as exc:
                errors.append(LineError(str(path), 0, str(exc)))
            else:
                rows.append(bytes.fromhex(getattr(hashes, signal_type)))
                note: dict[str, Any] = {"file": path.name}
                if signal_type == "pdq":
                    note["pdq_quality"] = hashes.pdq_quality
                notes.append(note)
            if progress:
                progress(1)
        width = SIGNAL_BYTES[signal_type]
        array = np.frombuffer(b"".join(rows), np.uint8).reshape(-1, width).copy()
        return _Input(array, lambda: enumerate(notes), errors, len(errors))

    def import_list(
        self, bank_name: str, path: Path, *, format: str = "auto", skip_invalid: bool = False
    ) -> ImportReport:
        """Import one text or CSV hash list into an existing bank (see ``import_files``)."""
        return self.import_files(bank_name, [path], format=format, skip_invalid=skip_invalid)

    def import_images(
        self,
        bank_name: str,
        paths: Iterable[Path],
        *,
        skip_invalid: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Hash images (files, or folders walked) into an existing bank (see ``import_files``)."""
        files = list(iter_media_paths(paths))
        return self.import_files(
            bank_name, images=files, skip_invalid=skip_invalid, progress=progress
        )

    def remove_hashes(
        self, bank_name: str, hashes: NDArray[np.uint8], *, synced: bool = False
    ) -> int:
        """Tombstone every stored copy of these exact hashes; returns how many were removed.

        A bank fed by an exchange is refused (``synced`` is for the sync itself): its next full
        fetch would bring the hashes back, so they must be removed at the exchange.
        """
        bank = self.store.get_bank(bank_name)
        if not synced and self.store.get_sync(bank.name) is not None:
            raise BankError(
                f"bank {bank.name!r} is fed by an exchange; its next full fetch would bring "
                "removed hashes back, so remove them at the exchange (or allow-list them)"
            )
        removed = 0
        with self.store.transaction():
            for segment in self.store.segments(bank.name):
                index = self.open_segment(bank, segment)
                hits = index.search(hashes, 0)
                if len(hits):
                    removed += self.store.add_tombstones(segment.id, hits.position.tolist())
        return removed

    def compact(self, bank_name: str) -> Segment | None:
        """Fold a bank's segments into one, dropping tombstoned hashes and keeping metadata."""
        bank = self.store.get_bank(bank_name)
        old = self.store.segments(bank.name)
        if len(old) <= 1 and not any(len(self.store.tombstones(s.id)) for s in old):
            return old[0] if old else None
        parts: list[NDArray[np.uint8]] = []
        sources: list[tuple[int, NDArray[np.int64]]] = []
        for segment in old:
            live = self._live_positions(segment)
            parts.append(np.asarray(self.open_segment(bank, segment).hashes)[live])
            sources.append((segment.id, live))
        width = SIGNAL_BYTES[bank.signal_type]
        merged = np.concatenate(parts) if parts else np.empty((0, width), np.uint8)
        file = self._write_segment(bank.signal_type, merged) if merged.shape[0] else None
        try:
            with self.store.transaction():
                expected = {seg.id: len(live) for seg, (_, live) in zip(old, sources, strict=True)}
                current = self.store.segments(bank.name)
                changed = {seg.id for seg in current} != set(expected) or any(
                    seg.count - len(self.store.tombstones(seg.id)) != expected[seg.id]
                    for seg in current
                )
                if changed:
                    raise BankError(f"bank {bank.name!r} changed while compacting; run it again")
                compacted = None
                if file:
                    compacted = self.store.add_segment(
                        bank.name, file, int(merged.shape[0]), self._carried_metadata(sources)
                    )
                for segment in old:
                    self.store.remove_segment(segment.id)
        except BaseException:
            if file:
                self._remove_files(file)
            raise
        for segment in old:
            self._remove_files(segment.file)
        return compacted

    def _live_positions(self, segment: Segment) -> NDArray[np.int64]:
        live = np.ones(segment.count, bool)
        live[self.store.tombstones(segment.id)] = False
        return np.flatnonzero(live).astype(np.int64)

    def _carried_metadata(
        self, sources: list[tuple[int, NDArray[np.int64]]]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        offset = 0
        for segment_id, live in sources:
            for start in range(0, len(live), 500):
                chunk = live[start : start + 500].tolist()
                found = self.store.metadata(segment_id, chunk)
                for i, position in enumerate(chunk):
                    if position in found:
                        yield offset + start + i, found[position]
            offset += len(live)

    # -- export

    def iter_hashes(
        self, bank_name: str
    ) -> Iterator[tuple[Segment, NDArray[np.int64], NDArray[np.uint8]]]:
        """Live hashes of a bank, segment by segment: (segment, positions, hashes)."""
        bank = self.store.get_bank(bank_name)
        for segment in self.store.segments(bank.name):
            live = self._live_positions(segment)
            yield segment, live, np.asarray(self.open_segment(bank, segment).hashes)[live]

    def export_text(self, bank_name: str, out: BinaryIO, *, prefix: bool = False) -> int:
        bank = self.store.get_bank(bank_name)
        total = 0
        for _, _, hashes in self.iter_hashes(bank.name):
            write_text_list(out, bank.signal_type, hashes, prefix=prefix)
            total += int(hashes.shape[0])
        return total

    def export_csv(self, bank_name: str, out: TextIO) -> int:
        """CSV with the hash and every metadata column any hash of the bank has."""
        bank = self.store.get_bank(bank_name)
        parts = list(self.iter_hashes(bank.name))
        columns: list[str] = []
        for segment, positions, _ in parts:
            for start in range(0, len(positions), 500):
                chunk = positions[start : start + 500].tolist()
                for data in self.store.metadata(segment.id, chunk).values():
                    columns.extend(k for k in data if k not in columns and k != bank.signal_type)
        total = 0
        for i, (segment, positions, hashes) in enumerate(parts):
            lookup = _MetadataLookup(self.store, segment.id, positions)
            write_csv_list(out, bank.signal_type, hashes, lookup, columns, header=i == 0)
            total += int(hashes.shape[0])
        if not parts:
            write_csv_list(out, bank.signal_type, np.empty((0, 1), np.uint8), None, columns)
        return total

    # -- exchanges

    def sync(
        self,
        bank_name: str,
        exchange_name: str | None = None,
        collab: dict[str, Any] | None = None,
        *,
        credentials: str | None = None,
        allow_shrink: bool = False,
    ) -> dict[str, Any]:
        """Fetch from a SignalExchangeAPI into a bank, resuming from the stored checkpoint.

        The bank belongs to the exchange: a full fetch replaces its contents, so banks with
        imported hashes are refused, and a full fetch that brings nothing usable is refused
        unless ``allow_shrink``, and so is one that would shrink the bank to under half (a
        truncated feed must not silently empty or gut a bank). The
        checkpoint is reused only for the same exchange and collaboration. Each batch is
        applied in one transaction with its checkpoint, so an interrupted sync resumes where
        the last committed batch ended. A batch first drops every hash of the records it
        replaces (``replaced_records``: how deletions that name no hash, such as NCMEC's, are
        applied) and every stored copy of the deleted hashes it names, then adds its hashes.
        """
        bank = self.store.get_bank(bank_name)
        state = self.store.get_sync(bank.name)
        if exchange_name is None or collab is None:
            if state is None:
                raise BankError(f"bank {bank.name!r} has no exchange configured; give one")
            exchange_name, collab = state.exchange, state.collab
        elif state is None and self.store.segments(bank.name):
            raise BankError(
                f"bank {bank.name!r} holds imported hashes; an exchange replaces a bank's "
                "contents, so sync into a bank of its own"
            )
        same = state is not None and (state.exchange, state.collab) == (exchange_name, collab)
        checkpoint = state.checkpoint if same and state else None
        added = removed = 0
        skipped: dict[str, int] = {}
        # During a full fetch the old contents keep matching until the whole list has come:
        # its segments are dropped, and its checkpoint stored, only once the fetch completes.
        replacing: list[Segment] | None = None
        fetched = 0
        last_checkpoint: dict[str, Any] | None = None
        for batch in exchange.fetch(
            exchange_name, collab, credentials=credentials, checkpoint=checkpoint
        ):
            for key, count in batch.skipped.items():
                skipped[key] = skipped.get(key, 0) + count
            mine = [sig for sig in batch.signals if sig.signal_type == bank.signal_type]
            other = len(batch.signals) - len(mine)
            if other:
                key = f"not {bank.signal_type}"
                skipped[key] = skipped.get(key, 0) + other
            if batch.reset:
                replacing = self.store.segments(bank.name)
                fetched = 0
            kept = [sig for sig in mine if not sig.deleted]
            fetched += len(kept)
            last_checkpoint = batch.checkpoint
            # The index is built before the transaction, so other writers are not held up.
            fresh = _to_array(bank.signal_type, [sig.value for sig in kept])
            file = self._write_segment(bank.signal_type, fresh) if kept else None
            try:
                with self.store.transaction():
                    # By record: NCMEC deletions name only the entry, with no hash. By value
                    # only where an exchange names no records, so that a hash another record
                    # still lists stays.
                    removed += self._remove_records(bank.name, batch.replaced_records)
                    gone = [
                        sig.value
                        for sig in mine
                        if sig.deleted and exchange.is_valid_signal(bank.signal_type, sig.value)
                    ]
                    if gone and not batch.replaced_records:
                        removed += self.remove_hashes(
                            bank.name, _to_array(bank.signal_type, gone), synced=True
                        )
                    if file:
                        self.store.add_segment(
                            bank.name,
                            file,
                            len(kept),
                            ((i, sig.metadata) for i, sig in enumerate(kept) if sig.metadata),
                        )
                    if replacing is None:
                        self.store.set_sync(bank.name, exchange_name, collab, batch.checkpoint)
            except BaseException:
                if file:
                    self._remove_files(file)
                raise
            added += len(kept)
        if replacing is not None:
            removed += self._finish_replacement(
                bank,
                replacing,
                fetched,
                allow_shrink,
                skipped,
                exchange_name,
                collab,
                last_checkpoint,
            )
        return {
            "bank": bank.name,
            "exchange": exchange_name,
            "added": added,
            "removed": removed,
            "skipped": skipped,
        }

    def _finish_replacement(
        self,
        bank: Bank,
        old: list[Segment],
        fetched: int,
        allow_shrink: bool,
        skipped: dict[str, int],
        exchange_name: str,
        collab: dict[str, Any],
        checkpoint: dict[str, Any] | None,
    ) -> int:
        """Drop what a completed full fetch replaced; returns how many live hashes went."""
        live = sum(s.count - len(self.store.tombstones(s.id)) for s in old)
        if live and fetched < live * MIN_KEPT_ON_REFETCH and not allow_shrink:
            raise BankError(
                f"exchange {exchange_name!r} returned {fetched} {bank.signal_type} hashes for "
                f"bank {bank.name!r}, which holds {live} (skipped: {skipped or 'none'}); "
                "refusing to empty it or shrink it by more than half: a truncated feed looks "
                "like this. Pass allow_shrink (--allow-shrink) if the list really is smaller now"
            )
        with self.store.transaction():
            for segment in old:
                self.store.remove_segment(segment.id)
            self.store.set_sync(bank.name, exchange_name, collab, checkpoint)
        for segment in old:
            self._remove_files(segment.file)
        return live

    def _remove_records(self, bank_name: str, records: Sequence[str]) -> int:
        """Tombstone every hash of these exchange records; returns how many were not already."""
        removed = 0
        if not records:
            return removed
        with self.store.transaction():
            for segment_id, positions in self.store.record_positions(bank_name, records).items():
                removed += self.store.add_tombstones(segment_id, positions)
        return removed

    # -- matching

    def matcher(self, *, threshold: int | None = None) -> BankMatcher:
        return BankMatcher(self, threshold=threshold)


class _MetadataLookup:
    """Metadata of row i of an export, fetched 500 positions at a time as rows advance."""

    def __init__(self, store: BankStore, segment_id: int, positions: NDArray[np.int64]) -> None:
        self._store = store
        self._segment_id = segment_id
        self._positions = positions
        self._cache: dict[int, dict[str, Any]] = {}

    def __call__(self, row: int) -> dict[str, Any]:
        position = int(self._positions[row])
        if position not in self._cache:
            chunk = self._positions[row : row + 500].tolist()
            found = self._store.metadata(self._segment_id, chunk)
            self._cache = {p: found.get(p, {}) for p in chunk}
        return self._cache[position]


def check_options(bank: Bank, options: dict[str, Any]) -> None:
    """Refuse bank options that disagree with an existing bank, rather than ignore them."""
    for key, value in options.items():
        if value is not None and getattr(bank, key) != value:
            raise BankError(
                f"bank {bank.name!r} exists with {key}={getattr(bank, key)!r}, not {value!r}; "
                "change it with `gardien bank update`, or use another bank"
            )


def _chained(inputs: list[_Input]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The metadata of several inputs, at their positions in the merged segment."""
    offset = 0
    for item in inputs:
        if item.metadata is not None:
            for position, data in item.metadata():
                yield offset + position, data
        offset += int(item.hashes.shape[0])


def _to_array(signal_type: str, values: Sequence[str]) -> NDArray[np.uint8]:
    width = SIGNAL_BYTES[signal_type]
    data = b"".join(parse_hash(signal_type, v) for v in values)
    return np.frombuffer(data, np.uint8).reshape(-1, width).copy()


@dataclass
class _OpenSegment:
    bank: Bank
    segment: Segment
    index: Index
    tombstones: NDArray[np.int64]


class BankMatcher:
    """The enabled banks opened for matching: a snapshot, reopened to see later imports."""

    def __init__(self, banks: HashBanks, *, threshold: int | None = None) -> None:
        if threshold is not None and not 0 <= threshold <= MAX_THRESHOLD:
            raise BankError(f"threshold must be within 0..{MAX_THRESHOLD}, got {threshold}")
        self._banks = banks
        self.threshold = threshold
        self.segments: list[_OpenSegment] = []
        for bank in banks.store.list_banks():
            if not bank.enabled:
                continue
            for segment in banks.store.segments(bank.name):
                index = banks.open_segment(bank, segment)
                tombstones = banks.store.tombstones(segment.id)
                self.segments.append(_OpenSegment(bank, segment, index, tombstones))

    def signal_types(self) -> set[str]:
        """Types held by any enabled bank, block or allow."""
        return {s.bank.signal_type for s in self.segments}

    def block_types(self) -> set[str]:
        """Types that can produce a match: held, not all removed, by an enabled block bank."""
        return {
            s.bank.signal_type
            for s in self.segments
            if s.bank.kind != "allow" and s.segment.count > len(s.tombstones)
        }

    def threshold_for(self, bank: Bank) -> int:
        """A bank's own threshold, or the default; ``threshold`` overrides it for block banks
        only, so widening a search never widens what allow-lists suppress."""
        if bank.signal_type != "pdq":
            return 0
        if self.threshold is not None and bank.kind != "allow":
            return self.threshold
        return bank.threshold if bank.threshold is not None else DEFAULT_THRESHOLD

    def match(self, signal_type: str, queries: NDArray[np.uint8]) -> list[QueryResult]:
        """Match each query row against every enabled bank of ``signal_type``."""
        results = [QueryResult() for _ in range(queries.shape[0])]
        for part in self.segments:
            if part.bank.signal_type != signal_type:
                continue
            hits = part.index.search(queries, self.threshold_for(part.bank))
            if len(part.tombstones) and len(hits):
                hits = hits.take(~np.isin(hits.position, part.tombstones))
            self._collect(part, hits.sorted(), queries, results)
        for result in results:
            result.settle()
        return results

    def _collect(
        self,
        part: _OpenSegment,
        hits: Hits,
        queries: NDArray[np.uint8],
        results: list[QueryResult],
    ) -> None:
        if not len(hits):
            return
        pdq = isinstance(part.index, PdqIndex)
        positions = hits.position.tolist()
        notes: dict[int, dict[str, Any]] = {}
        unique = sorted(set(positions))
        for start in range(0, len(unique), 500):
            notes.update(self._banks.store.metadata(part.segment.id, unique[start : start + 500]))
        bank = part.bank
        base = {k: v for k, v in (("source", bank.source), ("category", bank.category)) if v}
        for q, position, distance in zip(
            hits.query.tolist(), positions, hits.distance.tolist(), strict=True
        ):
            results[q].matches.append(
                Match(
                    bank=bank.name,
                    kind=bank.kind,
                    hash=bytes(
                        np.asarray(part.index.hashes[position] if pdq else queries[q])
                    ).hex(),
                    distance=int(distance),
                    metadata={**base, **notes.get(position, {})},
                )
            )
