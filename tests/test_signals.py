"""Hash lists: text (threatexchange file-exchange format) and CSV, read and written."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from gardien.core.errors import GardienError
from gardien.hashing import signals
from gardien.hashing.signals import (
    MAX_KEPT_ERRORS,
    SIGNAL_BYTES,
    HashListError,
    LineError,
    format_hashes,
    hex_lines,
    iter_csv_metadata,
    parse_hash,
    read_csv_list,
    read_hash_list,
    read_text_list,
    sniff_format,
    write_csv_list,
    write_text_list,
)

RNG = np.random.default_rng(20240611)


def random_hashes(n: int, signal_type: str = "pdq") -> NDArray[np.uint8]:
    return RNG.integers(0, 256, (n, SIGNAL_BYTES[signal_type]), dtype=np.uint8)


def hexes(hashes: NDArray[np.uint8]) -> list[str]:
    return [bytes(row).hex() for row in hashes]


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def error_lines(exc: pytest.ExceptionInfo[HashListError]) -> list[int]:
    return [e.line for e in exc.value.errors]


# --------------------------------------------------------------------------- parse / format


def test_parse_hash_accepts_case_and_whitespace() -> None:
    value = random_hashes(1)[0].tobytes()
    assert parse_hash("pdq", value.hex()) == value
    assert parse_hash("pdq", f"  {value.hex().upper()}\r\n") == value
    md5 = random_hashes(1, "md5")[0].tobytes()
    assert parse_hash("md5", md5.hex()) == md5


@pytest.mark.parametrize(
    ("signal_type", "text", "message"),
    [
        ("pdq", "a" * 63, "pdq hash must be 64 hex digits, got 63 characters"),
        ("md5", "a" * 64, "md5 hash must be 32 hex digits, got 64 characters"),
        ("md5", "", "md5 hash must be 32 hex digits, got 0 characters"),
        ("sha256", "a" * 65, "sha256 hash must be 64 hex digits, got 65 characters"),
        (
            "md5",
            "a" * 5 + "g" + "a" * 26,
            "md5 hash must be 32 hex digits, got non-hex character 'g' at position 6",
        ),
        # fromhex would skip the space; a hash may not contain one.
        ("md5", "a" * 15 + " " + "a" * 16, "got non-hex character ' ' at position 16"),
        ("md5", "é" * 32, "got non-hex character 'é' at position 1"),
    ],
)
def test_parse_hash_errors(signal_type: str, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_hash(signal_type, text)


def test_parse_hash_unknown_type() -> None:
    with pytest.raises(ValueError, match="unknown signal type 'tmk'"):
        parse_hash("tmk", "ab")


def test_hex_lines_and_format_hashes() -> None:
    hashes = random_hashes(50, "md5")
    expected = hexes(hashes)
    assert hex_lines(hashes) == "".join(h + "\n" for h in expected).encode()
    assert hex_lines(hashes, b"md5 ") == "".join(f"md5 {h}\n" for h in expected).encode()
    assert format_hashes(hashes) == expected
    assert format_hashes(random_hashes(0)) == []
    with pytest.raises(ValueError, match="2-D uint8"):
        hex_lines(np.zeros(32, np.uint8))


# --------------------------------------------------------------------------- text lists


@pytest.mark.parametrize("signal_type", sorted(SIGNAL_BYTES))
@pytest.mark.parametrize("prefix", [False, True])
def test_text_round_trip(tmp_path: Path, signal_type: str, prefix: bool) -> None:
    hashes = random_hashes(1000, signal_type)
    path = tmp_path / "list.txt"
    with path.open("wb") as out:
        write_text_list(out, signal_type, hashes, prefix=prefix)
    text = path.read_text()
    first = text.splitlines()[0]
    assert first == (f"{signal_type} " if prefix else "") + bytes(hashes[0]).hex()
    listed = read_text_list(path, signal_type)
    assert listed.signal_type == signal_type
    assert listed.hashes.dtype == np.uint8
    assert listed.hashes.shape == (1000, SIGNAL_BYTES[signal_type])
    np.testing.assert_array_equal(listed.hashes, hashes)
    np.testing.assert_array_equal(listed.lines, np.arange(1, 1001))
    assert listed.lines.dtype == np.int64
    assert listed.errors == [] and listed.error_count == 0
    assert len(listed) == 1000


def test_write_text_accepts_bytes_and_checks_shape(tmp_path: Path) -> None:
    hashes = random_hashes(3, "md5")
    out = io.BytesIO()
    write_text_list(out, "md5", [bytes(row) for row in hashes])
    assert out.getvalue().decode().splitlines() == hexes(hashes)
    with pytest.raises(ValueError, match=r"\(n, 32\) uint8"):
        write_text_list(io.BytesIO(), "pdq", hashes)
    with pytest.raises(ValueError, match="16 bytes"):
        write_text_list(io.BytesIO(), "md5", [b"short"])
    empty = io.BytesIO()
    write_text_list(empty, "pdq", np.empty((0, 1), np.uint8))
    assert empty.getvalue() == b""


def test_text_mixed_forms(tmp_path: Path) -> None:
    h = hexes(random_hashes(9))
    path = write(
        tmp_path / "list.txt",
        "\ufeff"  # a byte-order mark, as Notepad writes
        f"{h[0]}\n"
        "# a comment\n"
        "\n"
        f"pdq {h[1]}\r\n"
        f"{h[2].upper()}\r\n"
        "   \t \n"
        f"  pdq\t{h[3]}  \n"
        f"\t{h[4]}\n"
        "   # indented comment\n"
        f"PDQ {h[5]}\n"
        f"pdq {h[6].upper()}\n"
        "#" + "f" * 63 + "\n"  # hash-shaped comment
        f"{h[7]}\r\n"
        f"{h[8]}",  # no final newline
    )
    listed = read_text_list(path, "pdq")
    assert hexes(listed.hashes) == h
    assert listed.lines.tolist() == [1, 4, 5, 7, 8, 10, 11, 13, 14]


def test_text_digest_prefixes(tmp_path: Path) -> None:
    md5 = hexes(random_hashes(3, "md5"))
    path = write(tmp_path / "md5.txt", f"md5 {md5[0]}\nvideo_md5 {md5[1]}\n{md5[2]}\n")
    assert hexes(read_text_list(path, "md5").hashes) == md5
    sha = hexes(random_hashes(2, "sha256"))
    path = write(tmp_path / "sha.txt", f"video_sha256 {sha[0]}\r\nsha256 {sha[1]}\r\n")
    assert hexes(read_text_list(path, "sha256").hashes) == sha


@pytest.mark.parametrize("content", ["", "\n\n", "# only comments\n\r\n  # more\n"])
def test_text_empty_is_valid(tmp_path: Path, content: str) -> None:
    listed = read_text_list(write(tmp_path / "l.txt", content), "pdq")
    assert listed.hashes.shape == (0, 32)
    assert listed.lines.shape == (0,)
    assert listed.errors == []


def bad_text(tmp_path: Path) -> tuple[Path, list[str], dict[int, str]]:
    """A pdq list with one of each error kind; returns (path, good hashes, line → message)."""
    h = hexes(random_hashes(4))
    md5 = hexes(random_hashes(1, "md5"))[0]
    lines = [
        f"{h[0]}",  # 1 good
        f"{h[1][:-1]}",  # 2 too short
        f"md5 {md5}",  # 3 another type's prefix
        f"pdq {h[1]}",  # 4 good
        f"{h[2][:10]}x{h[2][11:]}",  # 5 hash-shaped, non-hex (the fast path's fallback)
        f"pdq {h[2]} extra",  # 6 three words
        "",  # 7 blank
        f"{h[2]}",  # 8 good
        f"foo {h[3]}",  # 9 unknown prefix
        f"{h[3]}0",  # 10 too long
        f"pdq {h[3][:-1]}",  # 11 prefixed, too short
        f"{md5}",  # 12 an md5 in a pdq list
        f"{h[3]}",  # 13 good
    ]
    data = "\r\n".join(lines).encode() + b"\r\n" + b"\xff\xfe" + h[0][2:].encode() + b"\n"
    messages = {
        2: "pdq hash must be 64 hex digits, got 63 characters",
        3: "signal type 'md5' does not belong in a pdq list",
        5: "got non-hex character 'x' at position 11",
        6: "expected one pdq hash, optionally after 'pdq ', got 3 words",
        9: "signal type 'foo' does not belong in a pdq list",
        10: "got 65 characters",
        11: "got 63 characters",
        12: "pdq hash must be 64 hex digits, got 32 characters",
        14: "line is not valid UTF-8 text (byte 0xff at column 1)",
    }
    return write(tmp_path / "bad.txt", data), h, messages


def test_text_errors_name_their_lines(tmp_path: Path) -> None:
    path, _, messages = bad_text(tmp_path)
    with pytest.raises(HashListError) as exc:
        read_text_list(path, "pdq")
    assert isinstance(exc.value, GardienError)
    assert error_lines(exc) == sorted(messages)
    for error in exc.value.errors:
        assert error.path == str(path)
        assert messages[error.line] in error.message
    assert exc.value.total == len(messages)
    text = str(exc.value)
    assert f"{path}:2: pdq hash must be 64 hex digits, got 63 characters" in text.splitlines()
    assert "more" not in text


def test_text_skip_invalid_keeps_good_lines(tmp_path: Path) -> None:
    path, h, messages = bad_text(tmp_path)
    listed = read_text_list(path, "pdq", skip_invalid=True)
    assert hexes(listed.hashes) == h
    assert listed.lines.tolist() == [1, 4, 8, 13]
    assert [e.line for e in listed.errors] == sorted(messages)
    assert listed.error_count == len(messages)


def test_undecodable_comment_is_skipped(tmp_path: Path) -> None:
    h = hexes(random_hashes(1))[0]
    path = write(tmp_path / "l.txt", b"# caf\xe9\n  # \xff\xfe\n" + h.encode() + b"\n")
    listed = read_text_list(path, "pdq")
    assert hexes(listed.hashes) == [h]
    assert listed.lines.tolist() == [3]


def test_utf16_file_is_named(tmp_path: Path) -> None:
    h = hexes(random_hashes(1))[0]
    path = write(tmp_path / "l.txt", (h + "\n").encode("utf-16"))
    with pytest.raises(HashListError, match=r"l\.txt:1: file is UTF-16"):
        read_text_list(path, "pdq")


def test_csv_read_as_text_says_it_looks_like_csv(tmp_path: Path) -> None:
    h = hexes(random_hashes(2))
    path = write(tmp_path / "l.txt", f"\ufeff# exported\n\npdq,note\n{h[0]},a\n{h[1]},\n")
    with pytest.raises(HashListError) as exc:
        read_text_list(path, "pdq")
    assert error_lines(exc) == [3, 4, 5]
    assert exc.value.errors[0].message == (
        "this looks like a CSV file ('pdq,note'), not a text list of one hash per line: "
        "import it as a CSV list (--format csv)"
    )
    assert "got 66 characters" in exc.value.errors[1].message  # other lines: as before
    listed = read_text_list(path, "pdq", skip_invalid=True)
    assert len(listed) == 0
    assert listed.errors[0].message.startswith("this looks like a CSV file")
    # A headerless CSV row is recognised too, shortened in the message.
    path = write(tmp_path / "l2.txt", f"{h[0]},{'x' * 100}\n")
    with pytest.raises(
        HashListError, match=r"l2\.txt:1: this looks like a CSV file \('[0-9a-f]{57}\.\.\.'\)"
    ):
        read_text_list(path, "pdq")
    # No comma: the usual message.
    path = write(tmp_path / "l3.txt", f"{h[0]} x y\n")
    with pytest.raises(HashListError, match="expected one pdq hash"):
        read_text_list(path, "pdq")


def test_error_list_is_capped_and_summarised(tmp_path: Path) -> None:
    path = write(tmp_path / "l.txt", "nothex\n" * (MAX_KEPT_ERRORS + 500))
    with pytest.raises(HashListError) as exc:
        read_text_list(path, "md5")
    assert len(exc.value.errors) == MAX_KEPT_ERRORS
    assert exc.value.total == MAX_KEPT_ERRORS + 500
    shown = str(exc.value).splitlines()
    assert len(shown) == 21
    assert shown[0] == f"{path}:1: md5 hash must be 32 hex digits, got 6 characters"
    assert shown[-1] == f"... and {MAX_KEPT_ERRORS + 480} more errors"
    listed = read_text_list(path, "md5", skip_invalid=True)
    assert len(listed) == 0
    assert listed.error_count == MAX_KEPT_ERRORS + 500
    assert len(listed.errors) == MAX_KEPT_ERRORS


def test_line_error_str() -> None:
    assert str(LineError("a.txt", 3, "bad")) == "a.txt:3: bad"
    assert str(HashListError([LineError("a", 1, "x"), LineError("a", 2, "y")])) == "a:1: x\na:2: y"


def test_small_blocks_and_long_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks smaller than a line, and lines longer than the limit, carried across blocks.
    monkeypatch.setattr(signals, "_BLOCK", 7)
    monkeypatch.setattr(signals, "_MAX_LINE", 200)
    h = hexes(random_hashes(4))
    path = write(
        tmp_path / "l.txt",
        f"{h[0]}\n{'z' * 1000}\n{h[1]}\r\n#{'c' * 1000}\npdq {h[2]}\n{'y' * 500}",
    )
    with pytest.raises(HashListError) as exc:
        read_text_list(path, "pdq")
    assert error_lines(exc) == [2, 6]
    assert "longer than 200 bytes" in exc.value.errors[0].message
    listed = read_text_list(path, "pdq", skip_invalid=True)
    assert hexes(listed.hashes) == h[:3]
    assert listed.lines.tolist() == [1, 3, 5]


# --------------------------------------------------------------------------- vectorised path


def reference_parse(data: bytes, signal_type: str) -> tuple[list[bytes], list[int], list[int]]:
    """Per-line Python, written independently of the module: (hashes, lines, error lines)."""
    prefixes = {"pdq": {"pdq"}, "md5": {"md5", "video_md5"}, "sha256": {"sha256", "video_sha256"}}
    hashes: list[bytes] = []
    lines: list[int] = []
    errors: list[int] = []
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            if not raw.strip().startswith(b"#"):
                errors.append(number)
            continue
        if not text or text.startswith("#"):
            continue
        words = text.split()
        if len(words) == 2 and words[0].lower() in prefixes[signal_type]:
            value = words[1]
        elif len(words) == 1:
            value = words[0]
        else:
            errors.append(number)
            continue
        try:
            hashes.append(parse_hash(signal_type, value))
        except ValueError:
            errors.append(number)
        else:
            lines.append(number)
    return hashes, lines, errors


def mixed_lines(hashes: NDArray[np.uint8], signal_type: str) -> tuple[bytes, int]:
    """Lines in many forms, mostly ones the vectorised path takes; returns (data, odd lines)."""
    prefix = "video_md5" if signal_type == "md5" else signal_type
    kinds = RNG.integers(0, 20, len(hashes))
    out: list[str] = []
    odd = 0
    for value, kind in zip(hexes(hashes), kinds.tolist(), strict=True):
        if kind < 8:
            out.append(value + "\n")
        elif kind < 11:
            out.append(f"{prefix} {value}\n")
        elif kind < 13:
            out.append(value.upper() + "\r\n")
        elif kind == 13:
            out.append(f"{prefix} {value}\r\n")
        elif kind == 14:
            out.append("# comment\n\n")
        elif kind == 15:
            out.append(f"  {value}\t\n")  # whitespace: per-line path
            odd += 1
        elif kind == 16:
            out.append(value[:-1] + "\n")  # too short: per-line path, error
            odd += 1
        elif kind == 17:
            out.append(value[:7] + "q" + value[8:] + "\n")  # hash-shaped, non-hex
            odd += 1
        elif kind == 18:
            out.append(f"other {value}\n")  # wrong prefix, hash-sized line
            odd += 1
        else:
            out.append(f"{prefix.upper()} {value}\n")  # uppercase prefix: per-line path
            odd += 1
    return "".join(out).encode(), odd


@pytest.mark.parametrize("signal_type", ["pdq", "md5"])
def test_vectorised_matches_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signal_type: str
) -> None:
    hashes = random_hashes(200_000, signal_type)
    data, odd = mixed_lines(hashes, signal_type)
    path = write(tmp_path / "big.txt", data)

    calls = 0
    per_line = signals._parse_text_line

    def counting(*args: Any) -> bytes | None:
        nonlocal calls
        calls += 1
        return per_line(*args)

    monkeypatch.setattr(signals, "_parse_text_line", counting)
    listed = read_text_list(path, signal_type, skip_invalid=True)
    assert calls == odd  # every other line went through numpy only

    expected, expected_lines, expected_errors = reference_parse(data, signal_type)
    assert len(expected) > 150_000
    assert listed.hashes.shape == (len(expected), SIGNAL_BYTES[signal_type])
    assert listed.hashes.tobytes() == b"".join(expected)
    assert listed.lines.tolist() == expected_lines
    assert listed.error_count == len(expected_errors)
    assert [e.line for e in listed.errors] == expected_errors[:MAX_KEPT_ERRORS]


def test_every_byte_value_in_a_hash_shaped_line(tmp_path: Path) -> None:
    # Each byte value at an even and an odd digit position of a line the numpy path takes.
    base = bytes(random_hashes(1, "md5")[0]).hex().encode()
    lines = []
    for value in range(256):
        if value in (0x0A, 0x0D):
            continue
        for position in (6, 11):
            lines.append(base[:position] + bytes([value]) + base[position + 1 :])
    data = b"\n".join(lines) + b"\n"
    listed = read_text_list(write(tmp_path / "l.txt", data), "md5", skip_invalid=True)
    expected, expected_lines, expected_errors = reference_parse(data, "md5")
    assert len(expected) == 22 * 2
    assert listed.hashes.tobytes() == b"".join(expected)
    assert listed.lines.tolist() == expected_lines
    assert [e.line for e in listed.errors] == expected_errors


def test_uniform_file_matches_reference(tmp_path: Path) -> None:
    hashes = random_hashes(200_000)
    for name, prefix, newline in [("bare", b"", b"\n"), ("crlf", b"pdq ", b"\r\n")]:
        data = hex_lines(hashes, prefix).replace(b"\n", newline)
        listed = read_text_list(write(tmp_path / name, data), "pdq")
        np.testing.assert_array_equal(listed.hashes, hashes)
        np.testing.assert_array_equal(listed.lines, np.arange(1, 200_001))
        expected, _, _ = reference_parse(data, "pdq")
        assert listed.hashes.tobytes() == b"".join(expected)


# --------------------------------------------------------------------------- CSV lists


def test_csv_round_trip_with_metadata(tmp_path: Path) -> None:
    hashes = random_hashes(300)
    notes: list[dict[str, Any]] = [
        {"note": f"n{i}", "case_id": i} if i % 3 else {"source": 'x, "quoted"\nsecond line'}
        for i in range(300)
    ]
    notes[5] = {}
    path = tmp_path / "l.csv"
    with path.open("w", newline="") as out:
        write_csv_list(out, "pdq", hashes, notes.__getitem__, ["note", "source", "case_id"])
    assert path.read_text().splitlines()[0] == "pdq,note,source,case_id"
    listed = read_csv_list(path, "pdq")
    np.testing.assert_array_equal(listed.hashes, hashes)
    # Every third row's quoted note spans two lines.
    starts = [2]
    for i in range(299):
        starts.append(starts[-1] + (2 if i % 3 == 0 else 1))
    assert listed.lines.tolist() == starts
    expected = [(i, {k: str(v) for k, v in n.items()}) for i, n in enumerate(notes) if n]
    assert list(iter_csv_metadata(path, "pdq", listed.lines)) == expected


def test_csv_without_columns_and_appended_rows(tmp_path: Path) -> None:
    first, second = random_hashes(3, "sha256"), random_hashes(2, "sha256")
    out = io.StringIO(newline="")
    write_csv_list(out, "sha256", first)
    write_csv_list(out, "sha256", second, header=False)
    path = write(tmp_path / "l.csv", out.getvalue())
    assert out.getvalue().splitlines()[0] == "sha256"
    listed = read_csv_list(path, "sha256")
    assert hexes(listed.hashes) == hexes(first) + hexes(second)
    assert list(iter_csv_metadata(path, "sha256", listed.lines)) == []


def test_write_csv_rejects_bad_columns() -> None:
    hashes = random_hashes(1)
    for columns, message in [
        (["note", "note"], "given twice"),
        ([" note"], "surrounding whitespace"),
        ([""], "empty"),
    ]:
        with pytest.raises(ValueError, match=message):
            write_csv_list(io.StringIO(), "pdq", hashes, None, columns)


def test_csv_round_trip_keeps_other_signal_names_as_metadata(tmp_path: Path) -> None:
    # An md5 column in a pdq list is metadata to read_csv_list, so writing it must work too.
    h = hexes(random_hashes(3))
    md5 = hexes(random_hashes(3, "md5"))
    source = write(
        tmp_path / "in.csv",
        f'pdq,md5,note\n{h[0]},{md5[0]},first\n{h[1]},,\n{h[2]},{md5[2]},"a, b"\n',
    )
    listed = read_csv_list(source, "pdq")
    metadata = dict(iter_csv_metadata(source, "pdq", listed.lines))
    assert metadata == {0: {"md5": md5[0], "note": "first"}, 2: {"md5": md5[2], "note": "a, b"}}

    path = tmp_path / "out.csv"
    with path.open("w", newline="") as out:
        write_csv_list(out, "pdq", listed.hashes, lambda i: metadata.get(i, {}), ["md5", "note"])
    assert path.read_text().splitlines()[0] == "pdq,md5,note"
    again = read_csv_list(path, "pdq")
    np.testing.assert_array_equal(again.hashes, listed.hashes)
    assert dict(iter_csv_metadata(path, "pdq", again.lines)) == metadata


def test_write_csv_renames_metadata_read_back_as_the_hash_column(tmp_path: Path) -> None:
    hashes = random_hashes(2)
    columns = ["hash", "PDQ", "Value", "hash_meta", "sha256", "note"]
    rows = [{c: f"{c}{i}" for c in columns} for i in range(2)]
    path = tmp_path / "l.csv"
    with path.open("w", newline="") as out:
        write_csv_list(out, "pdq", hashes, rows.__getitem__, columns)
    header = path.read_text().splitlines()[0]
    assert header == "pdq,hash_meta2,PDQ_meta,Value_meta,hash_meta,sha256,note"
    listed = read_csv_list(path, "pdq")
    np.testing.assert_array_equal(listed.hashes, hashes)
    renamed = dict(zip(columns, header.split(",")[1:], strict=True))
    assert list(iter_csv_metadata(path, "pdq", listed.lines)) == [
        (i, {renamed[c]: v for c, v in row.items()}) for i, row in enumerate(rows)
    ]


def test_write_csv_metadata_values_as_json(tmp_path: Path) -> None:
    hashes = random_hashes(2)
    values: list[dict[str, Any]] = [
        {
            "tags": ["a", "b"],
            "info": {"lieu": "Nîmes", "n": [1, 2.5]},
            "count": 3,
            "score": 0.25,
            "ok": True,
            "none": None,
            "text": 'plain, "quoted" é',
        },
        {"tags": [], "ok": False},
    ]
    columns = ["tags", "info", "count", "score", "ok", "none", "text"]
    path = tmp_path / "l.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        write_csv_list(out, "pdq", hashes, values.__getitem__, columns)
    listed = read_csv_list(path, "pdq")
    assert list(iter_csv_metadata(path, "pdq", listed.lines)) == [
        (
            0,
            {
                "tags": '["a","b"]',
                "info": '{"lieu":"Nîmes","n":[1,2.5]}',
                "count": "3",
                "score": "0.25",
                "ok": "true",
                "text": 'plain, "quoted" é',
            },
        ),
        (1, {"tags": "[]", "ok": "false"}),
    ]


def test_csv_header_forms(tmp_path: Path) -> None:
    h = hexes(random_hashes(2, "md5"))
    for header in ["md5", "Hash", " SIGNAL ", "value", "video_md5"]:
        path = write(tmp_path / "l.csv", f"note,{header}\r\na,{h[0]}\r\n,{h[1].upper()}\r\n")
        listed = read_csv_list(path, "md5")
        assert hexes(listed.hashes) == h
        assert listed.lines.tolist() == [2, 3]
        assert list(iter_csv_metadata(path, "md5", listed.lines)) == [(0, {"note": "a"})]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("note,source", ":2: no hash column in CSV header 'note,source': name it 'pdq'"),
        ("md5,note", "(it has a 'md5' column: is this a md5 list?)"),
        ("pdq,hash,note", "several hash columns in CSV header 'pdq,hash,note': 'pdq', 'hash'"),
        ("pdq,note,note", "column 'note' appears twice"),
        ("pdq,note,", "column 3 of CSV header 'pdq,note,' has no name"),
    ],
)
def test_csv_header_errors(tmp_path: Path, header: str, message: str) -> None:
    path = write(tmp_path / "l.csv", "\n" + header + "\n")
    with pytest.raises(HashListError) as exc:
        read_csv_list(path, "pdq", skip_invalid=True)  # a bad header fails even so
    assert error_lines(exc) == [2]
    assert message in str(exc.value)


def test_csv_empty_file(tmp_path: Path) -> None:
    for content in ["", "\n\n", "pdq,note\n"]:
        path = write(tmp_path / "l.csv", content)
        listed = read_csv_list(path, "pdq")
        assert listed.hashes.shape == (0, 32)
        assert list(iter_csv_metadata(path, "pdq", listed.lines)) == []


def test_csv_errors_and_skipped_rows_keep_metadata_aligned(tmp_path: Path) -> None:
    h = hexes(random_hashes(5))
    path = write(
        tmp_path / "l.csv",
        b"pdq,note,source\n"  # 1
        + f"{h[0]},first,a\n".encode()  # 2 good
        + f"{h[1]},too,many,fields\n".encode()  # 3 error
        + f"{h[1][:-2]},short,\n".encode()  # 4 error
        + f'{h[1]},"multi\nline",b\n'.encode()  # 5-6 good
        + b",,\n"  # 7 blank row
        + f"{h[2]},,\n".encode()  # 8 good, no metadata
        + f"{h[3]},caf\xe9,c\n".encode("latin-1")  # 9 not UTF-8
        + b"\n"  # 10 blank
        + f" {h[3].upper()} ,last, d \n".encode()  # 11 good
        + f"{h[4]},caf\u00e9\n".encode(),  # 12 too few fields
    )
    with pytest.raises(HashListError) as exc:
        read_csv_list(path, "pdq")
    assert error_lines(exc) == [3, 4, 9, 12]
    messages = [e.message for e in exc.value.errors]
    assert messages[0] == "expected 3 fields as in the header, got 4"
    assert messages[1] == "pdq hash must be 64 hex digits, got 62 characters"
    assert messages[2] == "row is not valid UTF-8 text"
    assert messages[3] == "expected 3 fields as in the header, got 2"

    listed = read_csv_list(path, "pdq", skip_invalid=True)
    assert hexes(listed.hashes) == [h[0], h[1], h[2], h[3]]
    assert listed.lines.tolist() == [2, 5, 8, 11]
    assert list(iter_csv_metadata(path, "pdq", listed.lines)) == [
        (0, {"note": "first", "source": "a"}),
        (1, {"note": "multi\nline", "source": "b"}),
        (3, {"note": "last", "source": "d"}),
    ]


def test_csv_metadata_detects_a_changed_file(tmp_path: Path) -> None:
    h = hexes(random_hashes(2))
    path = write(tmp_path / "l.csv", f"pdq,note\n{h[0]},a\n{h[1]},b\n")
    listed = read_csv_list(path, "pdq")
    write(path, f"pdq,note\n\n{h[0]},a\n")
    with pytest.raises(ValueError, match="no CSV row starts at line 2"):
        list(iter_csv_metadata(path, "pdq", listed.lines))


# --------------------------------------------------------------------------- format


def test_sniff_format(tmp_path: Path) -> None:
    h = hexes(random_hashes(1))[0]
    assert sniff_format(write(tmp_path / "a.CSV", h + "\n")) == "csv"
    assert sniff_format(write(tmp_path / "b.txt", f"# a, comment\n\npdq {h}\n")) == "text"
    assert sniff_format(write(tmp_path / "c", f"# x\n{h},note\n")) == "csv"
    assert sniff_format(write(tmp_path / "d.txt", f"\ufeffPDQ\n{h}\n")) == "csv"
    assert sniff_format(write(tmp_path / "e", "")) == "text"


def test_read_hash_list_dispatches(tmp_path: Path) -> None:
    h = hexes(random_hashes(2))
    csv_path = write(tmp_path / "l.dat", f"hash,note\n{h[0]},x\n{h[1]},y\n")
    text_path = write(tmp_path / "l.txt", f"{h[0]}\npdq {h[1]}\n")
    assert hexes(read_hash_list(csv_path, "pdq").hashes) == h
    assert hexes(read_hash_list(text_path, "pdq").hashes) == h
    with pytest.raises(ValueError, match="unknown hash list format"):
        read_hash_list(text_path, "pdq", fmt="json")


# --------------------------------------------------------------------------- timing (printed)


def test_print_read_speed(tmp_path: Path) -> None:
    """Prints (asserts nothing about) the read rate, as a cheap regression signal."""
    hashes = random_hashes(500_000)
    path = tmp_path / "speed.txt"
    with path.open("wb") as out:
        write_text_list(out, "pdq", hashes)
    start = time.perf_counter()
    listed = read_text_list(path, "pdq")
    elapsed = time.perf_counter() - start
    assert len(listed) == 500_000
    print(f"read 500k pdq lines in {elapsed:.2f}s")
