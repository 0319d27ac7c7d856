"""Read and write hash lists: the files hash banks are imported from and exported to.

Two formats:

* **text**, the format python-threatexchange's file exchange reads and writes
  (``threatexchange/exchanges/impl/file_api.py``): one hash per line, either bare or after the
  signal type's name and a space (``pdq <hex>``). ``video_md5`` / ``video_sha256``, the names
  threatexchange gives file digests, are accepted for ``md5`` / ``sha256`` lists. Blank lines and
  lines starting with ``#`` are skipped; CRLF, surrounding whitespace and uppercase hex are fine.
* **CSV** with a header row: one hash column (named like the signal type, or ``hash``,
  ``signal`` or ``value``); every other column is per-hash metadata.

Banks hold 10M+ hashes, so a list never becomes one Python object per line. Text is read in
blocks of a few MB cut at newlines; numpy finds the lines, picks out those shaped like a hash
(bare or with a known prefix, optional CR) and decodes their hex through a lookup table indexed
by each pair of digits, which also flags non-hex bytes. Only the lines it cannot take (odd
whitespace, errors, comments with leading blanks) go through per-line Python, a block at a time.
Hashes come out as an ``(n, nbytes)`` uint8 array with, for each, its 1-based source line.

A list with bad lines raises :class:`HashListError` naming every bad line (up to a cap), and
nothing is returned, so a bank is never loaded from half a list; ``skip_invalid=True`` keeps the
good hashes and reports the bad lines instead.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, TextIO

import numpy as np
from numpy.typing import NDArray

from gardien.core.errors import GardienError

__all__ = [
    "MAX_KEPT_ERRORS",
    "SIGNAL_BYTES",
    "HashList",
    "HashListError",
    "LineError",
    "format_hashes",
    "hex_lines",
    "iter_csv_metadata",
    "parse_hash",
    "read_csv_list",
    "read_hash_list",
    "read_text_list",
    "sniff_format",
    "write_csv_list",
    "write_text_list",
]

#: Bytes per hash of each gardien signal type; written as twice as many lowercase hex digits.
SIGNAL_BYTES: Final = {"pdq": 32, "md5": 16, "sha256": 32}

#: Line prefixes accepted in text lists: threatexchange names file digests video_md5/sha256.
_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    "pdq": ("pdq",),
    "md5": ("md5", "video_md5"),
    "sha256": ("sha256", "video_sha256"),
}
_CANONICAL: Final = {name: kind for kind, names in _PREFIXES.items() for name in names}
_GENERIC_COLUMNS: Final = ("hash", "signal", "value")


def _hash_column_names(signal_type: str) -> frozenset[str]:
    """Header names (lowercase, stripped) read_csv_list takes as the hash column of a list."""
    return frozenset((*_PREFIXES[signal_type], *_GENERIC_COLUMNS))


#: Errors kept in memory (the rest are only counted): a 10M-line list of the wrong type must
#: not become 10M error objects.
MAX_KEPT_ERRORS: Final = 1000
_SHOWN_ERRORS: Final = 20

_BLOCK: Final = 4 << 20  # bytes read at a time
_MAX_LINE: Final = 1 << 20  # a longer line is an error (and is not held in memory)
_BATCH: Final = 1 << 16  # rows per per-line Python batch, CSV flush, and write
_LF: Final = 0x0A
_CR: Final = 0x0D
_HASH_SIGN: Final = 0x23
_UTF8_BOM: Final = b"\xef\xbb\xbf"


def _hex_lut() -> NDArray[np.uint8]:
    lut = np.full(256, 255, np.uint8)
    for i, c in enumerate(b"0123456789abcdef"):
        lut[c] = i
    for i, c in enumerate(b"ABCDEF"):
        lut[c] = 10 + i
    return lut


def _hex_pair_lut(lut: NDArray[np.uint8]) -> NDArray[np.uint16]:
    # Every two-byte sequence, as it lies in memory when viewed as one native uint16.
    pairs = np.arange(1 << 16, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
    high, low = lut[pairs[:, 0]].astype(np.uint16), lut[pairs[:, 1]].astype(np.uint16)
    table = ((high << 4) | low).astype(np.uint16)
    table[(high > 15) | (low > 15)] = 0xFFFF
    return table


#: Byte → nibble value, 255 for anything that is not a hex digit.
_HEX_LUT: Final = _hex_lut()
#: Two hex digits (read as one uint16) → their byte, above 255 if either is not a hex digit: one
#: gather per output byte decodes and validates (half the work of a per-digit table).
_HEX_PAIR_LUT: Final = _hex_pair_lut(_HEX_LUT)
#: Byte → its two lowercase hex digits, for vectorised writing.
_HEX_PAIRS: Final = np.frombuffer(
    "".join(f"{i:02x}" for i in range(256)).encode("ascii"), np.uint8
).reshape(256, 2)
_HIGH_BYTES: Final = np.uint64(0xFF00FF00FF00FF00)


@dataclass(frozen=True)
class LineError:
    """One bad line of a hash list, located so a person can fix the file."""

    path: str
    line: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class HashListError(GardienError):
    """A hash list has bad lines; raised before anything is returned, so no bank is half-loaded.

    ``errors`` holds the first :data:`MAX_KEPT_ERRORS` of them, ``total`` counts them all.
    """

    def __init__(self, errors: list[LineError], total: int | None = None) -> None:
        super().__init__(errors, total)
        self.errors = errors
        self.total = max(len(errors), total or 0)

    def __str__(self) -> str:
        if not self.errors:
            return "bad hash list"
        shown = [str(e) for e in self.errors[:_SHOWN_ERRORS]]
        more = self.total - len(shown)
        if more > 0:
            shown.append(f"... and {more} more error{'s' if more != 1 else ''}")
        return "\n".join(shown)


@dataclass(eq=False)
class HashList:
    """Hashes read from a list, each with the source line it came from.

    ``errors`` is non-empty only when reading with ``skip_invalid``; it keeps the first
    :data:`MAX_KEPT_ERRORS` bad lines and ``error_count`` counts them all.
    """

    signal_type: str
    hashes: NDArray[np.uint8]  # (n, SIGNAL_BYTES[signal_type])
    lines: NDArray[np.int64]  # (n,), 1-based source line of each hash
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0

    def __post_init__(self) -> None:
        self.error_count = max(self.error_count, len(self.errors))

    def __len__(self) -> int:
        return int(self.hashes.shape[0])


def _nbytes(signal_type: str) -> int:
    try:
        return SIGNAL_BYTES[signal_type]
    except KeyError:
        raise ValueError(
            f"unknown signal type {signal_type!r}; expected one of {', '.join(SIGNAL_BYTES)}"
        ) from None


def _hash_message(signal_type: str, width: int, text: str) -> str:
    """Why ``text`` (already stripped) is not a ``signal_type`` hash."""
    if len(text) != width:
        return f"{signal_type} hash must be {width} hex digits, got {len(text)} characters"
    for i, c in enumerate(text):
        if c not in "0123456789abcdefABCDEF":
            return (
                f"{signal_type} hash must be {width} hex digits, "
                f"got non-hex character {c!r} at position {i + 1}"
            )
    return f"{signal_type} hash must be {width} hex digits"  # pragma: no cover


def _parse_stripped(signal_type: str, nbytes: int, text: str) -> bytes:
    if len(text) == 2 * nbytes:
        try:
            value = bytes.fromhex(text)
        except ValueError:
            pass
        else:
            # fromhex skips ASCII whitespace: the right length means every character was a digit.
            if len(value) == nbytes:
                return value
    raise ValueError(_hash_message(signal_type, 2 * nbytes, text))


def parse_hash(signal_type: str, text: str) -> bytes:
    """One hash from hex (either case, surrounding whitespace ignored), for one-off inputs.

    Raises ValueError saying what is wrong, e.g. "pdq hash must be 64 hex digits, got 63
    characters".
    """
    return _parse_stripped(signal_type, _nbytes(signal_type), text.strip())


def hex_lines(hashes: NDArray[np.uint8], prefix: bytes = b"") -> bytes:
    """``prefix + lowercase hex + "\\n"`` for each row, built in one numpy pass (no per-row str)."""
    h = np.asarray(hashes)
    if h.dtype != np.uint8 or h.ndim != 2:
        raise ValueError(f"hashes must be a 2-D uint8 array, got {h.dtype} of shape {h.shape}")
    n, nbytes = h.shape
    lp = len(prefix)
    out = np.empty((n, lp + 2 * nbytes + 1), np.uint8)
    if lp:
        out[:, :lp] = np.frombuffer(prefix, np.uint8)
    out[:, lp : lp + 2 * nbytes] = _HEX_PAIRS[h].reshape(n, 2 * nbytes)
    out[:, -1] = _LF
    return out.tobytes()


def format_hashes(hashes: NDArray[np.uint8]) -> list[str]:
    """Lowercase hex strings, for small lists (reports, JSON); large ones go through hex_lines."""
    return hex_lines(hashes).decode("ascii").splitlines()


# --------------------------------------------------------------------------- shared machinery


class _Errors:
    """Collects line errors: keeps the first MAX_KEPT_ERRORS, counts all."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.kept: list[LineError] = []
        self.count = 0
        self._override: tuple[int, str] | None = None

    def override(self, line: int, message: str) -> None:
        """Report ``message`` instead of whatever error ``line`` has (a clearer diagnosis)."""
        self._override = (line, message)

    def add(self, line: int, message: str) -> None:
        self.count += 1
        if self._override is not None and self._override[0] == line:
            message = self._override[1]
        if len(self.kept) < MAX_KEPT_ERRORS:
            self.kept.append(LineError(self.path, line, message))


class _HashBuffer:
    """Growable (hashes, lines) arrays, so results are not concatenated (twice the memory)."""

    def __init__(self, nbytes: int, capacity: int) -> None:
        capacity = max(capacity, 16)
        self.nbytes = nbytes
        self.hashes = np.empty((capacity, nbytes), np.uint8)
        self.lines = np.empty(capacity, np.int64)
        self.size = 0

    def append(self, hashes: NDArray[np.uint8], lines: NDArray[np.int64]) -> None:
        n = int(lines.shape[0])
        if not n:
            return
        need = self.size + n
        capacity = int(self.lines.shape[0])
        if need > capacity:  # the file grew while being read, or a CSV estimate was short
            capacity = max(need, capacity * 3 // 2)
            grown = np.empty((capacity, self.nbytes), np.uint8)
            grown[: self.size] = self.hashes[: self.size]
            self.hashes = grown
            grown_lines = np.empty(capacity, np.int64)
            grown_lines[: self.size] = self.lines[: self.size]
            self.lines = grown_lines
        self.hashes[self.size : need] = hashes
        self.lines[self.size : need] = lines
        self.size = need

    def finish(self) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
        n = self.size
        capacity = int(self.lines.shape[0])
        if n == capacity:
            return self.hashes, self.lines
        if n * 10 >= capacity * 9:  # little slack: a view avoids copying the whole list
            return self.hashes[:n], self.lines[:n]
        return self.hashes[:n].copy(), self.lines[:n].copy()


def _finish(signal_type: str, out: _HashBuffer, errors: _Errors, skip_invalid: bool) -> HashList:
    if errors.count and not skip_invalid:
        raise HashListError(errors.kept, errors.count)
    hashes, lines = out.finish()
    return HashList(signal_type, hashes, lines, errors.kept, errors.count)


# --------------------------------------------------------------------------- text lists


def _line_chunks(stream: BinaryIO, block: int) -> Iterator[tuple[int, bytes | None]]:
    """``(first line number, whole lines each ending in LF)``; ``(n, None)``: line n is too long.

    A UTF-8 byte-order mark at the start is dropped. A line longer than _MAX_LINE is dropped as
    it is read (so a file without newlines cannot fill memory); it is reported unless it is a
    comment.
    """
    line = 1
    carry = b""
    skipping = False
    first = True
    while data := stream.read(block):
        if first:
            first = False
            if data.startswith(_UTF8_BOM):
                data = data[len(_UTF8_BOM) :]
        if skipping:
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data = data[nl + 1 :]
            line += 1
            skipping = False
        if carry:
            data = carry + data
        cut = data.rfind(b"\n") + 1
        if cut:
            yield line, data if cut == len(data) else data[:cut]
            line += data.count(b"\n", 0, cut)
            carry = data[cut:]
        else:
            carry = data
        if len(carry) > _MAX_LINE:
            if not carry.lstrip().startswith(b"#"):
                yield line, None
            carry = b""
            skipping = True
    if carry and not skipping:
        yield line, carry + b"\n"


def _parse_text_line(raw: bytes, signal_type: str, nbytes: int) -> bytes | None:
    """The per-line reference parser: a hash, None for a blank or comment line, or ValueError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if raw.lstrip().startswith(b"#"):
            return None
        raise ValueError(
            f"line is not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        ) from None
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    fields = text.split()
    if len(fields) == 2:
        name, text = fields
        if name.lower() not in _PREFIXES[signal_type]:
            raise ValueError(
                f"signal type {name!r} does not belong in a {signal_type} list "
                f"(expected '{signal_type} <hex>' or a bare hash)"
            )
    elif len(fields) > 2:
        raise ValueError(
            f"expected one {signal_type} hash, optionally after '{signal_type} ', "
            f"got {len(fields)} words"
        )
    return _parse_stripped(signal_type, nbytes, text)


class _TextParser:
    """Parses blocks of whole lines: numpy for the lines shaped like hashes, Python for the rest."""

    def __init__(self, signal_type: str, path: str, capacity: int) -> None:
        self.signal_type = signal_type
        self.nbytes = _nbytes(signal_type)
        self.width = 2 * self.nbytes
        self.prefixes = [np.frombuffer(f"{p} ".encode(), np.uint8) for p in _PREFIXES[signal_type]]
        self.out = _HashBuffer(self.nbytes, capacity)
        self.errors = _Errors(path)

    def feed(self, chunk: bytes, first_line: int) -> None:
        arr = np.frombuffer(chunk, np.uint8)
        ends = np.flatnonzero(arr == _LF)  # chunk ends with LF, so every line has one
        starts = np.empty_like(ends)
        starts[:1] = 0
        starts[1:] = ends[:-1] + 1
        # ends - 1 is -1 only for an empty first line, and arr[-1] is then LF: no CR.
        stop = ends - (arr[ends - 1] == _CR)
        length = stop - starts
        width = self.width

        # Where the hex digits start within each line shaped like a hash, -1 elsewhere.
        offset = np.where(length == width, 0, -1)
        for prefix in self.prefixes:
            rows = np.flatnonzero(length == prefix.size + width)
            if rows.size:
                ok = np.ones(rows.size, np.bool_)
                line_starts = starts[rows]
                for k, byte in enumerate(prefix):
                    ok &= arr[line_starts + k] == byte
                offset[rows[ok]] = prefix.size
        candidates = np.flatnonzero(offset >= 0)
        good, packed, bad = self._decode(arr, ends, starts, offset, candidates)

        # Per-line Python: not blank, not a plain comment, not hash-shaped; or hash-shaped
        # with a non-hex byte (for its message).
        slow = np.flatnonzero((offset < 0) & (length > 0) & (arr[starts] != _HASH_SIGN))
        if bad.size:
            slow = np.union1d(slow, bad)
        slow_rows, slow_hashes = self._slow(chunk, starts, ends, slow, first_line)
        if slow_rows.size:
            rows = np.concatenate([good, slow_rows])
            hashes = np.concatenate([packed, slow_hashes])
            order = np.argsort(rows, kind="stable")
            good, packed = rows[order], hashes[order]
        self.out.append(packed, good + first_line)

    def _decode(
        self,
        arr: NDArray[np.uint8],
        ends: NDArray[np.intp],
        starts: NDArray[np.intp],
        offset: NDArray[np.intp],
        candidates: NDArray[np.intp],
    ) -> tuple[NDArray[np.intp], NDArray[np.uint8], NDArray[np.intp]]:
        """Decode the hash-shaped lines: (rows decoded, their hashes, rows with a non-hex byte)."""
        n = int(candidates.size)
        width = self.width
        if not n:
            return candidates, np.empty((0, self.nbytes), np.uint8), candidates
        stride = int(ends[0]) + 1
        if (
            n == ends.size
            and n * stride == arr.size
            and bool((offset == offset[0]).all())
            and bool((np.diff(ends) == stride).all())
        ):
            # Every line the same shape (the usual file): a strided view, no gather.
            off = int(offset[0])
            digits = arr.reshape(n, stride)[:, off : off + width]
        else:
            hex_starts = starts[candidates] + offset[candidates]
            delta = np.zeros(arr.size, np.int8)
            delta[hex_starts] = 1
            delta[hex_starts + width] = -1  # the line's CR or LF: never another line's start
            mask = np.cumsum(delta, dtype=np.int8).view(np.bool_)
            digits = arr[mask].reshape(n, width)
        # Rows may start at odd addresses: numpy views them as uint16 all the same.
        words = _HEX_PAIR_LUT[digits.view(np.uint16)]
        bad_rows = (words.view(np.uint64) & _HIGH_BYTES).any(axis=1)
        packed = words.astype(np.uint8)
        if bad_rows.any():
            keep = ~bad_rows
            return candidates[keep], packed[keep], candidates[bad_rows]
        return candidates, packed, candidates[:0]

    def _slow(
        self,
        chunk: bytes,
        starts: NDArray[np.intp],
        ends: NDArray[np.intp],
        rows: NDArray[np.intp],
        first_line: int,
    ) -> tuple[NDArray[np.intp], NDArray[np.uint8]]:
        """Per-line Python for ``rows`` (sorted), in batches of _BATCH lines."""
        found: list[int] = []
        hashes = bytearray()
        for b in range(0, int(rows.size), _BATCH):
            batch = rows[b : b + _BATCH]
            for row, start, end in zip(
                batch.tolist(), starts[batch].tolist(), ends[batch].tolist(), strict=True
            ):
                try:
                    value = _parse_text_line(chunk[start:end], self.signal_type, self.nbytes)
                except ValueError as exc:
                    self.errors.add(first_line + row, str(exc))
                    continue
                if value is not None:
                    found.append(row)
                    hashes += value
        return (
            np.array(found, np.intp),
            np.frombuffer(bytes(hashes), np.uint8).reshape(-1, self.nbytes),
        )


def read_text_list(path: Path, signal_type: str, *, skip_invalid: bool = False) -> HashList:
    """Read a text hash list (threatexchange file-exchange format, see the module docstring).

    Raises HashListError naming the bad lines, unless ``skip_invalid``: then the good hashes
    come back with the errors. An empty list is valid. A file whose first line (past blanks and
    comments) has a comma is taken for a CSV list given as text: the error on that line says
    so, and to import it as CSV.
    """
    nbytes = _nbytes(signal_type)
    name = str(path)
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        # Each hash takes at least its digits and a newline (the last line may lack one).
        parser = _TextParser(signal_type, name, size // (2 * nbytes + 1) + 1)
        head = stream.read(1 << 16)
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            parser.errors.add(1, "file is UTF-16 text; save it as UTF-8 or ASCII")
            return _finish(signal_type, parser.out, parser.errors, skip_invalid)
        first = _first_content_line(head)
        if first is not None and b"," in first[1]:
            shown = first[1].decode("utf-8", "replace")
            if len(shown) > 60:
                shown = shown[:57] + "..."
            parser.errors.override(
                first[0],
                f"this looks like a CSV file ({shown!r}), not a text list of one hash per "
                "line: import it as a CSV list (--format csv)",
            )
        stream.seek(0)
        for first_line, chunk in _line_chunks(stream, _BLOCK):
            if chunk is None:
                parser.errors.add(first_line, f"line is longer than {_MAX_LINE} bytes")
            else:
                parser.feed(chunk, first_line)
    return _finish(signal_type, parser.out, parser.errors, skip_invalid)


# --------------------------------------------------------------------------- CSV lists


def _open_csv(path: Path) -> TextIO:
    # surrogateescape: undecodable bytes become a per-row error instead of ending the read.
    return open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")


def _csv_rows(stream: TextIO) -> Iterator[tuple[int, list[str] | str]]:
    """``(physical line the row starts on, cells)``, or ``(line, message)`` for a csv.Error."""
    reader = csv.reader(stream)
    previous = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield previous + 1, f"malformed CSV: {exc}"
        else:
            yield previous + 1, row
        previous = reader.line_num


def _blank(row: list[str]) -> bool:
    return all(not cell.strip() for cell in row)


def _undecodable(row: list[str]) -> bool:
    for cell in row:
        if not cell.isascii():
            try:
                cell.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


@dataclass(frozen=True)
class _Header:
    line: int
    names: list[str]  # stripped
    column: int  # the hash column


def _read_header(
    rows: Iterator[tuple[int, list[str] | str]], signal_type: str, path: str
) -> _Header | None:
    """The header row, checked; None for a file with no rows. Raises HashListError."""
    for line, row in rows:
        if isinstance(row, str):
            raise HashListError([LineError(path, line, row)])
        if _blank(row):
            continue
        break
    else:
        return None

    def fail(message: str) -> HashListError:
        return HashListError([LineError(path, line, message)])

    if _undecodable(row):
        raise fail("CSV header is not valid UTF-8 text")
    names = [cell.strip() for cell in row]
    shown = ",".join(names)
    lowered = [n.lower() for n in names]
    wanted = _hash_column_names(signal_type)
    matches = [i for i, n in enumerate(lowered) if n in wanted]
    if not matches:
        message = (
            f"no hash column in CSV header {shown!r}: name it {signal_type!r}, "
            f"'hash', 'signal' or 'value'"
        )
        others = [n for n in lowered if n in _CANONICAL]
        if others:
            message += f" (it has a {others[0]!r} column: is this a {_CANONICAL[others[0]]} list?)"
        raise fail(message)
    if len(matches) > 1:
        both = ", ".join(repr(names[i]) for i in matches)
        raise fail(f"several hash columns in CSV header {shown!r}: {both}; keep one")
    seen: set[str] = set()
    for i, n in enumerate(names):
        if not n:
            raise fail(f"column {i + 1} of CSV header {shown!r} has no name")
        if n in seen:
            raise fail(f"column {n!r} appears twice in CSV header {shown!r}")
        seen.add(n)
    return _Header(line, names, matches[0])


def read_csv_list(path: Path, signal_type: str, *, skip_invalid: bool = False) -> HashList:
    """Read the hashes of a CSV hash list, checking every row; ``lines`` are CSV line numbers.

    The metadata columns are read separately by :func:`iter_csv_metadata`, so that a 10M-row
    list never holds 10M dicts. Errors as for :func:`read_text_list`; a bad header always
    raises.
    """
    nbytes = _nbytes(signal_type)
    name = str(path)
    errors = _Errors(name)
    size = os.stat(path).st_size
    out = _HashBuffer(nbytes, size // (2 * nbytes + 1) + 1)
    with _open_csv(path) as stream:
        rows = _csv_rows(stream)
        header = _read_header(rows, signal_type, name)
        if header is None:
            return _finish(signal_type, out, errors, skip_invalid)
        count, column = len(header.names), header.column
        batch = bytearray()
        batch_lines: list[int] = []

        def flush() -> None:
            out.append(
                np.frombuffer(bytes(batch), np.uint8).reshape(-1, nbytes),
                np.array(batch_lines, np.int64),
            )
            batch.clear()
            batch_lines.clear()

        for line, row in rows:
            if isinstance(row, str):
                errors.add(line, row)
                continue
            if _blank(row):
                continue
            if len(row) != count:
                errors.add(line, f"expected {count} fields as in the header, got {len(row)}")
                continue
            if _undecodable(row):
                errors.add(line, "row is not valid UTF-8 text")
                continue
            try:
                value = _parse_stripped(signal_type, nbytes, row[column].strip())
            except ValueError as exc:
                errors.add(line, str(exc))
                continue
            batch += value
            batch_lines.append(line)
            if len(batch_lines) >= _BATCH:
                flush()
        flush()
    return _finish(signal_type, out, errors, skip_invalid)


def iter_csv_metadata(
    path: Path, signal_type: str, rows: NDArray[np.int64]
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(position, metadata)`` for the rows :func:`read_csv_list` kept, re-reading the file.

    ``rows`` is the ``lines`` array read_csv_list returned; position is the index into its
    hashes. Empty cells are dropped, and rows with no metadata left are not yielded. Lazy, so
    metadata can be stored in batches. Raises ValueError if the file no longer matches ``rows``.
    """
    total = int(rows.shape[0])
    if not total:
        return
    name = str(path)
    with _open_csv(path) as stream:
        it = _csv_rows(stream)
        header = _read_header(it, signal_type, name)
        if header is None:
            raise ValueError(f"{name}: the CSV file is empty; has it changed since it was read?")
        columns = [(i, n) for i, n in enumerate(header.names) if i != header.column]
        position = 0
        wanted = int(rows[0])
        for line, row in it:
            if line < wanted:
                continue
            if line > wanted or isinstance(row, str) or len(row) != len(header.names):
                break
            metadata = {key: value for i, key in columns if (value := row[i].strip())}
            if metadata:
                yield position, metadata
            position += 1
            if position == total:
                return
            wanted = int(rows[position])
    raise ValueError(
        f"{name}: no CSV row starts at line {wanted}; has the file changed since it was read?"
    )


# --------------------------------------------------------------------------- format and dispatch


def _first_content_line(head: bytes) -> tuple[int, bytes] | None:
    """``(1-based line number, stripped line)`` of the first line of ``head`` that is neither
    blank nor a comment, numbered as read_text_list does (LF only; a UTF-8 BOM is dropped)."""
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :]
    for number, raw in enumerate(head.split(b"\n"), start=1):
        line = raw.strip()
        if line and not line.startswith(b"#"):
            return number, line
    return None


def _header_names() -> frozenset[bytes]:
    return frozenset(n.encode() for n in (*_CANONICAL, *_GENERIC_COLUMNS))


def sniff_format(path: Path) -> str:
    """ "csv" or "text": a .csv suffix, or a first non-comment line that reads like a CSV row."""
    if path.suffix.lower() == ".csv":
        return "csv"
    with open(path, "rb") as stream:
        head = stream.read(1 << 16)
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :]
    names = _header_names()
    for raw in head.splitlines():  # CR alone ends a line too: csv reads such files
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        # A comma, or a lone header like "pdq" (a one-column CSV).
        return "csv" if b"," in line or line.lower() in names else "text"
    return "text"


def read_hash_list(
    path: Path, signal_type: str, *, skip_invalid: bool = False, fmt: str | None = None
) -> HashList:
    """Read a text or CSV list, sniffing which (see :func:`sniff_format`) unless ``fmt`` says."""
    fmt = fmt or sniff_format(path)
    if fmt == "csv":
        return read_csv_list(path, signal_type, skip_invalid=skip_invalid)
    if fmt == "text":
        return read_text_list(path, signal_type, skip_invalid=skip_invalid)
    raise ValueError(f"unknown hash list format {fmt!r}; expected 'text' or 'csv'")


# --------------------------------------------------------------------------- writing

HashesLike = NDArray[np.uint8] | Sequence[bytes]


def _as_hashes(signal_type: str, hashes: HashesLike) -> NDArray[np.uint8]:
    nbytes = _nbytes(signal_type)
    if isinstance(hashes, np.ndarray):
        arr = hashes
    else:
        wrong = [len(h) for h in hashes if len(h) != nbytes]
        if wrong:
            raise ValueError(f"{signal_type} hashes are {nbytes} bytes, got one of {wrong[0]}")
        arr = np.frombuffer(b"".join(hashes), np.uint8).reshape(-1, nbytes)
    if arr.ndim == 2 and arr.shape[0] == 0:  # nothing to write: any width will do
        return np.empty((0, nbytes), np.uint8)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != nbytes:
        raise ValueError(
            f"{signal_type} hashes must be a (n, {nbytes}) uint8 array, "
            f"got {arr.dtype} of shape {arr.shape}"
        )
    return arr


def write_text_list(
    out: BinaryIO, signal_type: str, hashes: HashesLike, *, prefix: bool = False
) -> None:
    """Write one lowercase hex hash per line; ``prefix`` writes ``pdq <hex>`` like threatexchange.

    Written in batches, so exporting a large bank needs no full-size text copy.
    """
    arr = _as_hashes(signal_type, hashes)
    line_prefix = f"{signal_type} ".encode() if prefix else b""
    for b in range(0, int(arr.shape[0]), _BATCH):
        out.write(hex_lines(arr[b : b + _BATCH], line_prefix))


def write_csv_list(
    out: TextIO,
    signal_type: str,
    hashes: HashesLike,
    metadata: Callable[[int], dict[str, Any]] | None = None,
    columns: Sequence[str] = (),
    *,
    header: bool = True,
) -> None:
    """Write a CSV list: header ``signal_type,<columns...>``, then one row per hash.

    ``metadata(i)`` gives row i's values; only ``columns`` are written, so the caller chooses
    what leaves the bank. Values are written as :func:`_csv_cell` says: strings as they are,
    None or missing as an empty cell, anything else (numbers, booleans, lists, dicts) as compact
    JSON. ``header=False`` appends more rows to a list already started (a bank exported segment
    by segment). Open ``out`` with ``newline=""``.

    A metadata column named like another signal type (``md5`` in a pdq list) is written as it
    is: :func:`read_csv_list` reads it back as metadata. One that read_csv_list would take for
    this list's hash column (its signal type's names, ``hash``, ``signal`` or ``value``, in any
    case) is written under a header with ``_meta`` appended (``hash_meta``; ``hash_meta2`` and
    so on if that name is taken too), so the file reads back with the right hashes and the value
    kept under the new name. Empty names, names with surrounding whitespace and duplicates raise
    ValueError.
    """
    arr = _as_hashes(signal_type, hashes)
    cols = list(columns)
    seen: set[str] = set()
    for c in cols:
        if not c.strip() or c != c.strip():
            raise ValueError(f"CSV column name {c!r} is empty or has surrounding whitespace")
        if c in seen:
            raise ValueError(f"CSV column {c!r} given twice")
        seen.add(c)
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow([signal_type, *_csv_header_names(signal_type, cols)])
    for b in range(0, int(arr.shape[0]), _BATCH):
        text = hex_lines(arr[b : b + _BATCH]).decode("ascii")
        if not cols:
            out.write(text)  # hex never needs quoting
            continue
        rows = []
        for i, hexed in enumerate(text.splitlines(), start=b):
            values = metadata(i) if metadata is not None else {}
            rows.append([hexed, *(_csv_cell(values.get(c)) for c in cols)])
        writer.writerows(rows)


def _csv_header_names(signal_type: str, columns: list[str]) -> list[str]:
    """``columns`` as written in the header: those read_csv_list would take for the hash column
    get ``_meta`` appended (then a number, until the name is unused)."""
    reserved = _hash_column_names(signal_type) | {signal_type}
    taken = {c.lower() for c in columns} | reserved
    names = []
    for c in columns:
        if c.lower() in reserved:
            base = f"{c}_meta"
            name, n = base, 2
            while name.lower() in taken:
                name, n = f"{base}{n}", n + 1
            taken.add(name.lower())
            c = name
        names.append(c)
    return names


def _csv_cell(value: Any) -> str:
    """One metadata value as a CSV cell: str as is, None as empty, anything else as compact
    JSON (``["a","b"]``, ``{"k":1}``, ``3``, ``true``); what JSON cannot hold goes through str."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
