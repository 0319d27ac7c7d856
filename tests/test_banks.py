"""Banks end to end: import, match with thresholds and allow-lists, remove, compact, sync.

Each test runs with the metadata on SQLite and on PostgreSQL (tests/pg.py).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gardien.hashing import exchange
from gardien.hashing.banks import HashBanks
from gardien.hashing.exchange import ExchangeBatch, ExchangeSignal
from gardien.hashing.hashers import hash_bytes, hash_file
from gardien.hashing.index import HashIndexError
from gardien.hashing.signals import HashListError
from gardien.hashing.store import BankError
from tests.hashing_fixtures import (
    flip_bits,
    near_duplicate,
    random_hashes,
    save,
    scene,
    write_list,
)
from tests.pg import Backend


@pytest.fixture
def banks(backend: Backend) -> Iterator[HashBanks]:
    with HashBanks(backend.home, database_url=backend.url) as opened:
        yield opened


def _hex(row: np.ndarray) -> str:
    return bytes(row).hex()


def test_pdq_bank_matches_within_its_threshold(banks: HashBanks, tmp_path: Path) -> None:
    stored = random_hashes(1, 50)
    banks.create("known", "pdq", category="known-csam", source="test")
    report = banks.import_list("known", write_list(tmp_path / "list.txt", stored))
    assert report.added == 50 and report.errors == []
    queries = np.stack(
        [
            flip_bits(stored[0], list(range(31))),  # 31 bits off: a match
            flip_bits(stored[1], list(range(32))),  # 32 bits off: not a match
            stored[2],
        ]
    )
    results = banks.matcher().match("pdq", queries)
    assert [len(r.matches) for r in results] == [1, 0, 1]
    first = results[0].matches[0]
    assert (first.bank, first.hash, first.distance) == ("known", _hex(stored[0]), 31)
    assert first.metadata == {"source": "test", "category": "known-csam"}
    assert results[2].matches[0].distance == 0

    banks.store.update_bank("known", threshold=10)
    assert banks.matcher().match("pdq", queries[:1])[0].matches == []
    assert len(banks.matcher(threshold=40).match("pdq", queries[1:2])[0].matches) == 1


def test_allow_list_hits_suppress_matches(banks: HashBanks, tmp_path: Path) -> None:
    stored = random_hashes(2, 5)
    banks.create("block", "pdq")
    banks.create("benign", "pdq", kind="allow")
    banks.import_list("block", write_list(tmp_path / "a.txt", stored))
    banks.import_list("benign", write_list(tmp_path / "b.txt", stored[:1]))
    results = banks.matcher().match("pdq", stored[:2])
    assert results[0].matches == [] and [m.bank for m in results[0].allowed_by] == ["benign"]
    assert [m.bank for m in results[1].matches] == ["block"] and results[1].allowed_by == []
    assert results[0].to_dict()["allowed_by"][0]["distance"] == 0


def test_disabled_banks_are_not_matched(banks: HashBanks, tmp_path: Path) -> None:
    stored = random_hashes(3, 3)
    banks.create("b", "pdq")
    banks.import_list("b", write_list(tmp_path / "l.txt", stored))
    banks.store.update_bank("b", enabled=False)
    assert banks.matcher().match("pdq", stored)[0].matches == []


def test_a_bad_line_imports_nothing_unless_skipped(banks: HashBanks, tmp_path: Path) -> None:
    stored = random_hashes(4, 4)
    path = tmp_path / "bad.txt"
    lines = [_hex(r) for r in stored]
    lines.insert(2, "not-a-hash")
    path.write_text("\n".join(lines) + "\n")
    banks.create("b", "pdq")
    with pytest.raises(HashListError) as caught:
        banks.import_list("b", path)
    assert [e.line for e in caught.value.errors] == [3]
    assert banks.store.segments("b") == [] and banks.get("b").count == 0
    report = banks.import_list("b", path, skip_invalid=True)
    assert report.added == 4 and report.error_count == 1 and report.errors[0].line == 3


def test_csv_metadata_reaches_matches_and_export(banks: HashBanks, tmp_path: Path) -> None:
    stored = random_hashes(5, 3)
    path = tmp_path / "list.csv"
    path.write_text(
        "pdq,note,case_id\n"
        + "".join(f"{_hex(r)},note {i},{100 + i}\n" for i, r in enumerate(stored))
    )
    banks.create("b", "pdq", category="ncii")
    banks.import_list("b", path)
    found = banks.matcher().match("pdq", stored[1:2])[0].matches[0]
    assert found.metadata == {"category": "ncii", "note": "note 1", "case_id": "101"}
    out = io.StringIO()
    assert banks.export_csv("b", out) == 3
    lines = out.getvalue().splitlines()
    assert lines[0] == "pdq,note,case_id"
    assert lines[2] == f"{_hex(stored[1])},note 1,101"


def test_remove_tombstones_and_compact_keeps_the_rest(banks: HashBanks, tmp_path: Path) -> None:
    first, second = random_hashes(6, 4), random_hashes(7, 3)
    banks.create("b", "pdq")
    banks.import_list("b", write_list(tmp_path / "1.txt", first))
    path = tmp_path / "2.csv"
    path.write_text("pdq,note\n" + "".join(f"{_hex(r)},n{i}\n" for i, r in enumerate(second)))
    banks.import_list("b", path)
    assert banks.remove_hashes("b", first[:2]) == 2
    assert banks.remove_hashes("b", first[:2]) == 0
    assert banks.get("b").count == 5
    assert banks.matcher().match("pdq", first[:1])[0].matches == []
    old_files = [s.file for s in banks.store.segments("b")]
    banks.compact("b")
    assert len(banks.store.segments("b")) == 1
    assert not any((banks.home / f).with_suffix(".json").exists() for f in old_files)
    results = banks.matcher().match("pdq", np.vstack([first, second]))
    assert [len(r.matches) for r in results] == [0, 0, 1, 1, 1, 1, 1]
    assert results[5].matches[0].metadata == {"note": "n1"}
    out = io.BytesIO()
    assert banks.export_text("b", out) == 5
    assert out.getvalue().decode().split() == [_hex(r) for r in [*first[2:], *second]]


@pytest.mark.parametrize(("signal_type", "width"), [("md5", 16), ("sha256", 32)])
def test_digest_banks_match_exactly(
    banks: HashBanks, tmp_path: Path, signal_type: str, width: int
) -> None:
    stored = random_hashes(8, 10, width)
    banks.create("d", signal_type)
    banks.import_list("d", write_list(tmp_path / "d.txt", stored))
    queries = np.stack([stored[4], flip_bits(stored[5], [0])])
    results = banks.matcher().match(signal_type, queries)
    assert [m.hash for m in results[0].matches] == [_hex(stored[4])]
    assert results[1].matches == []


def test_images_are_hashed_into_a_bank_and_near_duplicates_match(
    banks: HashBanks, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    originals = [scene(seed) for seed in range(3)]
    for i, pixels in enumerate(originals):
        save(pixels, folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    banks.create("img", "pdq")
    with pytest.raises(HashListError, match=r"broken\.jpg"):
        banks.import_images("img", [folder])
    assert banks.get("img").count == 0
    report = banks.import_images("img", [folder], skip_invalid=True)
    assert report.added == 3 and len(report.errors) == 1
    near = hash_bytes(near_duplicate(originals[1]))
    result = banks.matcher().match("pdq", np.frombuffer(bytes.fromhex(near.pdq), np.uint8)[None])
    assert [m.hash for m in result[0].matches] == [hash_file(folder / "1.png").pdq]
    assert result[0].matches[0].metadata["file"] == "1.png"


def test_sync_from_the_file_exchange_replaces_on_each_full_fetch(
    banks: HashBanks, tmp_path: Path
) -> None:
    stored = random_hashes(9, 3)
    source = write_list(tmp_path / "exchange.txt", stored, prefix="pdq ")
    collab = {"name": "local", "filename": str(source)}
    banks.create("synced", "pdq", source="file exchange")
    report = banks.sync("synced", "file", collab)
    assert report["added"] == 3 and banks.get("synced").count == 3
    write_list(source, stored[1:], prefix="pdq ")
    banks.sync("synced")  # resumes with the stored exchange and collaboration
    assert banks.get("synced").count == 2
    assert banks.matcher().match("pdq", stored[:1])[0].matches == []
    assert banks.store.get_sync("synced") is not None


def _signal(value: str, record: str, *, deleted: bool = False) -> ExchangeSignal:
    return ExchangeSignal("pdq", value, deleted, {"record": record, "entry_id": record})


def _fake_exchange(
    monkeypatch: pytest.MonkeyPatch, fetches: list[list[ExchangeBatch]]
) -> list[dict[str, Any] | None]:
    """Each sync gets the next list of batches; returns the checkpoints the syncs passed."""
    passed: list[dict[str, Any] | None] = []

    def fetch(
        name: str,
        collab: dict[str, Any],
        *,
        credentials: str | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> Iterator[ExchangeBatch]:
        assert (name, collab) == ("ncmec", {"name": "test"})
        passed.append(checkpoint)
        return iter(fetches.pop(0))

    monkeypatch.setattr(exchange, "fetch", fetch)
    return passed


def _matched(banks: HashBanks, value: str) -> list[dict[str, Any]]:
    query = np.frombuffer(bytes.fromhex(value), np.uint8)[None]
    return [m.metadata for m in banks.matcher(threshold=0).match("pdq", query)[0].matches]


def test_sync_applies_deletions_that_name_only_a_record(
    banks: HashBanks, monkeypatch: pytest.MonkeyPatch
) -> None:
    h1, h2, h3, h3_new, h4 = (_hex(r) for r in random_hashes(12, 5))
    passed = _fake_exchange(
        monkeypatch,
        [
            [
                ExchangeBatch(
                    [_signal(h1, "r1"), _signal(h2, "r2"), _signal(h3, "r3")],
                    {"page": 1},
                    Counter(),
                    reset=True,
                    replaced_records=["r1", "r2", "r3"],
                ),
                # NCMEC's deletion of entry r2: the record, no hash.
                ExchangeBatch(
                    [_signal("", "r2", deleted=True)],
                    {"page": 2},
                    Counter(),
                    replaced_records=["r2"],
                ),
            ],
            [
                # Entry r3 now holds another hash; r4 is new.
                ExchangeBatch(
                    [_signal(h3_new, "r3"), _signal(h4, "r4")],
                    {"page": 3},
                    Counter(),
                    replaced_records=["r3", "r4"],
                )
            ],
        ],
    )
    banks.create("fed", "pdq")
    report = banks.sync("fed", "ncmec", {"name": "test"})
    assert (report["added"], report["removed"]) == (3, 1)
    assert banks.get("fed").count == 2
    assert _matched(banks, h2) == []
    assert [m["record"] for m in _matched(banks, h1)] == ["r1"]

    report = banks.sync("fed")
    assert passed == [None, {"page": 2}]
    assert (report["added"], report["removed"]) == (2, 1)
    assert banks.get("fed").count == 3
    assert _matched(banks, h3) == []
    assert [m["record"] for m in _matched(banks, h3_new)] == ["r3"]
    assert banks.store.get_sync("fed").checkpoint == {"page": 3}  # type: ignore[union-attr]

    # Compacting carries the records over: later deletions still find their hashes.
    banks.compact("fed")
    assert len(banks.store.segments("fed")) == 1
    _fake_exchange(
        monkeypatch,
        [[ExchangeBatch([_signal("", "r1", deleted=True)], None, Counter(), False, ["r1"])]],
    )
    assert banks.sync("fed")["removed"] == 1
    assert _matched(banks, h1) == []
    assert banks.get("fed").count == 2


def test_sync_removes_by_record_and_by_value_counting_each_hash_once(
    banks: HashBanks, monkeypatch: pytest.MonkeyPatch
) -> None:
    h1, h2 = (_hex(r) for r in random_hashes(13, 2))
    keys = [f"pdq {h1}", f"pdq {h2}"]  # keyed exchanges: the record names the hash
    _fake_exchange(
        monkeypatch,
        [
            [
                ExchangeBatch(
                    [_signal(h1, keys[0]), _signal(h2, keys[1])], None, Counter(), True, keys
                ),
                ExchangeBatch(
                    [_signal(h1, keys[0], deleted=True)], None, Counter(), False, keys[:1]
                ),
                # A deletion naming a hash but no stored record still removes it by value.
                ExchangeBatch([_signal(h2, "elsewhere", deleted=True)], None, Counter()),
            ]
        ],
    )
    banks.create("fed", "pdq")
    report = banks.sync("fed", "ncmec", {"name": "test"})
    assert (report["added"], report["removed"]) == (2, 2)
    assert banks.get("fed").count == 0
    assert _matched(banks, h1) == [] and _matched(banks, h2) == []


def test_an_interrupted_full_fetch_keeps_the_old_contents(
    banks: HashBanks, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = [_hex(r) for r in random_hashes(14, 3)]
    new = _hex(random_hashes(15, 1)[0])

    def broken() -> Iterator[ExchangeBatch]:
        yield ExchangeBatch([_signal(new, "n1")], {"page": 9}, Counter(), reset=True)
        raise exchange.ExchangeError("exchange 'ncmec': connection reset")

    fetches = [
        [
            ExchangeBatch(
                [_signal(h, f"r{i}") for i, h in enumerate(old)], {"page": 1}, Counter(), reset=True
            )
        ]
    ]
    _fake_exchange(monkeypatch, fetches)
    banks.create("fed", "pdq")
    banks.sync("fed", "ncmec", {"name": "test"})
    monkeypatch.setattr(exchange, "fetch", lambda *a, **k: broken())
    with pytest.raises(exchange.ExchangeError):
        banks.sync("fed")
    assert all(_matched(banks, h) for h in old)  # still matching while the new list is partial
    assert banks.store.get_sync("fed").checkpoint == {"page": 1}  # type: ignore[union-attr]
    _fake_exchange(
        monkeypatch, [[ExchangeBatch([_signal(new, "n1")], {"page": 2}, Counter(), reset=True)]]
    )
    with pytest.raises(BankError, match="shrink it by more than half"):
        banks.sync("fed")  # 1 hash where the bank holds 4: looks like a truncated feed
    _fake_exchange(
        monkeypatch, [[ExchangeBatch([_signal(new, "n1")], {"page": 2}, Counter(), reset=True)]]
    )
    report = banks.sync("fed", allow_shrink=True)  # completes: now the old contents go
    # the old 3, plus the copies the interrupted and the refused fetches had added
    assert report["removed"] == 5 and banks.get("fed").count == 1
    assert _matched(banks, new) and not any(_matched(banks, h) for h in old)


def test_hashes_of_a_synced_bank_are_removed_at_the_exchange(
    banks: HashBanks, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = _hex(random_hashes(16, 1)[0])
    _fake_exchange(
        monkeypatch, [[ExchangeBatch([_signal(value, "r")], None, Counter(), reset=True)]]
    )
    banks.create("fed", "pdq")
    banks.sync("fed", "ncmec", {"name": "test"})
    with pytest.raises(BankError, match="fed by an exchange"):
        banks.remove_hashes("fed", np.frombuffer(bytes.fromhex(value), np.uint8)[None])


def test_a_missing_index_file_fails_loudly(banks: HashBanks, tmp_path: Path) -> None:
    banks.create("b", "pdq")
    banks.import_list("b", write_list(tmp_path / "l.txt", random_hashes(10, 3)))
    segment = banks.store.segments("b")[0]
    (banks.home / f"{segment.file}.hashes.npy").unlink()
    with pytest.raises(HashIndexError, match=r"hashes\.npy"):
        banks.matcher()


def test_remove_bank_deletes_its_files(banks: HashBanks, tmp_path: Path) -> None:
    banks.create("b", "pdq")
    banks.import_list("b", write_list(tmp_path / "l.txt", random_hashes(11, 3)))
    files = list((banks.home / "segments").rglob("*.npy"))
    assert files
    banks.remove("b")
    assert not any(f.exists() for f in files)
    assert banks.list_banks() == []
