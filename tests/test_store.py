"""The bank store: schema by migration, banks, segments, metadata, tombstones, sync state.

Tests taking ``store`` or ``backend`` run on SQLite and on PostgreSQL (see tests/pg.py); those
marked SQLite only look at what PostgreSQL has no counterpart of (the file, WAL).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gardien.core.errors import GardienError
from gardien.hashing import store as store_module
from gardien.hashing.store import (
    SCHEMA,
    UNSET,
    Bank,
    BankError,
    BankStore,
    Segment,
    SyncState,
    banks,
    segments,
    signal_metadata,
)
from gardien.home import gardien_database_url, gardien_home
from tests.pg import Backend, alembic_config, head

TABLES = {"banks", "segments", "signal_metadata", "signal_records", "tombstones", "sync_state"}
WHEN = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(backend: Backend) -> Iterator[BankStore]:
    with backend.open() as opened:
        yield opened


@contextmanager
def _connect(backend: Backend) -> Iterator[Connection]:
    """A connection of its own to the backend's database, in a transaction committed at the end."""
    engine = create_engine(backend.database_url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _rows(store: BankStore, table: str) -> int:
    with store.transaction() as conn:
        query = select(func.count()).select_from(SCHEMA.tables[table])
        return int(conn.execute(query).scalar_one())


def _versions(backend: Backend) -> list[tuple[str, ...]]:
    with _connect(backend) as conn:
        return [tuple(row) for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


# --- schema and migrations ------------------------------------------------------------------


def test_fresh_home_gets_schema_at_head(tmp_path: Path) -> None:
    """SQLite only: the file in the home, in WAL mode."""
    home = tmp_path / "deep" / "home"
    with BankStore(home) as store:
        assert store.list_banks() == []
        assert store.db_path == home / "gardien.db"
        assert store.database == str(home / "gardien.db")
    assert (home / "segments").is_dir()
    assert (home / "gardien.db").is_file()
    engine = create_engine(f"sqlite:///{home / 'gardien.db'}")
    try:
        with engine.connect() as conn:
            assert TABLES | {"alembic_version"} <= set(inspect(conn).get_table_names())
            assert MigrationContext.configure(conn).get_current_revision() == head()
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_a_sqlite_url_names_another_file(tmp_path: Path) -> None:
    """SQLite only: the metadata goes to the file named; the segment files stay in the home."""
    home, db = tmp_path / "home", tmp_path / "elsewhere.db"
    with BankStore(home, url=f"sqlite:///{db}") as store:
        store.create_bank("b", "md5")
        assert (store.db_path, store.database) == (db, str(db))
        assert repr(store) == f"BankStore({str(home)!r}, url={str(db)!r})"
        with store.transaction() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert db.is_file() and (home / "segments").is_dir()
    assert not (home / "gardien.db").exists()


def test_reopening_an_existing_home_keeps_data_and_revision(backend: Backend) -> None:
    with backend.open() as store:
        store.create_bank("ncmec", "pdq", category="known-csam")
        store.add_segment("ncmec", "segments/ncmec-1.npy", 3, [(0, {"note": "x"})])
    with backend.open() as store:
        bank = store.get_bank("ncmec")
        assert (bank.category, bank.count) == ("known-csam", 3)
        [segment] = store.segments("ncmec")
        assert store.metadata(segment.id, [0, 1]) == {0: {"note": "x"}}
    assert _versions(backend) == [(head(),)]


def test_migration_matches_the_tables_in_store_py(store: BankStore, backend: Backend) -> None:
    with _connect(backend) as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SCHEMA)
    assert diff == []


def test_migrations_downgrade_and_upgrade_again(backend: Backend) -> None:
    backend.home.mkdir()
    config = alembic_config(backend.database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    with _connect(backend) as conn:
        assert not set(inspect(conn).get_table_names()) & TABLES
    command.upgrade(config, "head")
    with _connect(backend) as conn:
        assert set(inspect(conn).get_table_names()) >= TABLES


def test_migration_creates_signal_records_indexed_by_record(
    store: BankStore, backend: Backend
) -> None:
    with _connect(backend) as conn:
        inspector = inspect(conn)
        columns = {c["name"]: c for c in inspector.get_columns("signal_records")}
        indexes = inspector.get_indexes("signal_records")
        [fk] = inspector.get_foreign_keys("signal_records")
        pk = inspector.get_pk_constraint("signal_records")
    assert list(columns) == ["segment_id", "position", "record"]
    assert not any(c["nullable"] for c in columns.values())
    assert pk["constrained_columns"] == ["segment_id", "position"]
    assert [(i["name"], i["column_names"]) for i in indexes] == [
        ("ix_signal_records_record", ["record"])
    ]
    assert (fk["referred_table"], fk["options"].get("ondelete")) == ("segments", "CASCADE")


def test_upgrade_from_0001_fills_in_records_from_metadata(backend: Backend) -> None:
    backend.home.mkdir()
    command.upgrade(alembic_config(backend.database_url), "0001")
    assert _versions(backend) == [("0001",)]
    with _connect(backend) as conn:
        bank_id = conn.execute(
            insert(banks)
            .values(
                name="ncmec",
                signal_type="pdq",
                kind="block",
                source="",
                category="",
                enabled=True,
                description="",
                created_at=WHEN,
                updated_at=WHEN,
            )
            .returning(banks.c.id)
        ).scalar_one()
        old = conn.execute(
            insert(segments)
            .values(bank_id=bank_id, file="segments/old.npy", count=5, created_at=WHEN)
            .returning(segments.c.id)
        ).scalar_one()
        conn.execute(
            insert(signal_metadata),
            [
                {"segment_id": old, "position": position, "data": json.dumps(data)}
                for position, data in [
                    (0, {"record": "m1-e1", "entry_id": "e1"}),
                    (1, {"note": "no record"}),
                    (2, {"record": "m1-é2"}),
                    (3, {"record": 7}),
                    (4, {"record": "m1-e4", "note": "an escaped NUL: \x00"}),  # PostgreSQL's
                ]  # JSON types refuse a document holding one
            ],
        )
    with backend.open() as store:
        assert store.record_positions("ncmec", ["m1-e1", "m1-é2", "m1-e4", "m1-none"]) == {
            old: [0, 2, 4]
        }
        assert store.get_bank("ncmec").count == 5
        new = store.add_segment("ncmec", "segments/new.npy", 1, [(0, {"record": "m1-e1"})])
        assert store.record_positions("ncmec", ["m1-e1"]) == {old: [0], new.id: [0]}
    assert _versions(backend) == [(head(),)]


def test_record_backfill_for_other_databases_reads_the_metadata(store: BankStore) -> None:
    path = Path(store_module.__file__).parent / "migrations" / "versions" / "0002_signal_records.py"
    spec = importlib.util.spec_from_file_location("gardien_migration_0002", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    store.create_bank("b", "md5")
    s1 = store.add_segment("b", "segments/1.npy", 3)
    s2 = store.add_segment("b", "segments/2.npy", 3)
    rows = [
        (s1.id, 0, {"record": "a"}),
        (s1.id, 2, {"record": 2}),
        (s2.id, 1, {"record": "b"}),
        (s2.id, 2, {"record": "nul\x00"}),  # left out: PostgreSQL's text cannot hold it
    ]
    with store.transaction() as conn:
        conn.execute(
            insert(signal_metadata),
            [{"segment_id": s, "position": p, "data": json.dumps(d)} for s, p, d in rows],
        )
        migration._backfill_rows(conn)
    assert store.record_positions("b", ["a", "b", "2"]) == {s1.id: [0], s2.id: [1]}
    assert _rows(store, "signal_records") == 2


def test_database_from_an_unknown_revision_is_refused(backend: Backend) -> None:
    backend.open().close()
    with _connect(backend) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(BankError, match="newer version of gardien"):
        backend.open()


def test_foreign_keys_are_enforced(store: BankStore) -> None:
    """On SQLite only once the store has turned them on (PRAGMA foreign_keys)."""
    values = {"bank_id": 999, "file": "segments/x.npy", "count": 1, "created_at": WHEN}
    with store.transaction() as conn, pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert(segments).values(**values))
    assert store.segments() == []


# --- banks ----------------------------------------------------------------------------------


def test_bank_round_trip(store: BankStore) -> None:
    created = store.create_bank(
        "ncmec",
        "pdq",
        source="NCMEC hash sharing",
        category="known-csam",
        threshold=31,
        description="shared list",
    )
    assert isinstance(created, Bank)
    assert created.name == "ncmec"
    assert created.signal_type == "pdq"
    assert created.kind == "block"
    assert created.source == "NCMEC hash sharing"
    assert created.category == "known-csam"
    assert created.threshold == 31
    assert created.enabled is True
    assert created.description == "shared list"
    assert created.count == 0
    assert created.created_at.tzinfo is not None
    assert store.get_bank("ncmec") == created

    store.create_bank("benign", "md5", kind="allow")
    store.create_bank("ai-gen", "sha256", category="ai-generated-csam")
    assert [b.name for b in store.list_banks()] == ["ai-gen", "benign", "ncmec"]
    assert store.get_bank("benign").kind == "allow"

    data = created.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["created_at"] == created.created_at.isoformat()
    assert data["threshold"] == 31


def test_update_bank(store: BankStore) -> None:
    store.create_bank("ncmec", "pdq", threshold=31)
    updated = store.update_bank(
        "ncmec", enabled=False, kind="allow", source="s", category="ncii", description="d"
    )
    assert (updated.enabled, updated.kind, updated.source, updated.category) == (
        False,
        "allow",
        "s",
        "ncii",
    )
    assert updated.description == "d"
    assert updated.threshold == 31  # UNSET: left as it was
    assert updated.updated_at >= updated.created_at
    assert store.update_bank("ncmec", threshold=10).threshold == 10
    assert store.update_bank("ncmec", threshold=None).threshold is None
    assert store.update_bank("ncmec", threshold=UNSET).threshold is None
    assert store.update_bank("ncmec", enabled=True).enabled is True
    assert store.get_bank("ncmec") == store.update_bank("ncmec")


def test_remove_bank(store: BankStore) -> None:
    store.create_bank("a", "md5")
    store.create_bank("b", "md5")
    assert store.remove_bank("a") == []
    assert [b.name for b in store.list_banks()] == ["b"]
    with pytest.raises(BankError, match="no bank named 'a' \\(banks: b\\)"):
        store.get_bank("a")


def test_unknown_bank_names_the_banks(store: BankStore) -> None:
    with pytest.raises(BankError, match="no bank named 'foo' \\(banks: none\\)"):
        store.get_bank("foo")
    store.create_bank("b", "md5")
    store.create_bank("a", "md5")
    for call in (
        lambda: store.get_bank("foo"),
        lambda: store.update_bank("foo", enabled=False),
        lambda: store.remove_bank("foo"),
        lambda: store.segments("foo"),
        lambda: store.add_segment("foo", "segments/x.npy", 1),
        lambda: store.get_sync("foo"),
    ):
        with pytest.raises(BankError, match="no bank named 'foo' \\(banks: a, b\\)"):
            call()


def test_bank_error_is_a_gardien_error() -> None:
    assert issubclass(BankError, GardienError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Upper"}, "invalid bank name 'Upper'"),
        ({"name": ""}, "invalid bank name ''"),
        ({"name": "-lead"}, "invalid bank name '-lead'"),
        ({"name": "a" * 65}, "invalid bank name"),
        ({"name": "new\nline"}, "invalid bank name"),
        ({"name": "trailing\n"}, "invalid bank name"),
        ({"signal_type": "sha1"}, "invalid signal_type 'sha1'"),
        ({"kind": "deny"}, "invalid kind 'deny'"),
        ({"threshold": 257}, "threshold 257 out of range 0..256"),
        ({"threshold": -1}, "threshold -1 out of range"),
        ({"threshold": 3.5}, "threshold must be an integer"),
        ({"threshold": True}, "threshold must be an integer"),
        ({"signal_type": "md5", "threshold": 10}, "threshold is for pdq banks only"),
        ({"source": 3}, "source must be a string"),
        ({"description": "a\x00b"}, "description must not contain NUL characters"),
    ],
)
def test_create_bank_validation_names_the_field(
    store: BankStore, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"name": "ok", "signal_type": "pdq", **kwargs}
    with pytest.raises(BankError, match=message):
        store.create_bank(args.pop("name"), args.pop("signal_type"), **args)
    assert store.list_banks() == []


def test_good_names_are_accepted(store: BankStore) -> None:
    for name in ("a", "0", "ncmec-2024.v1_x", "z" * 64):
        store.create_bank(name, "md5")
    assert len(store.list_banks()) == 4


def test_update_bank_validation(store: BankStore) -> None:
    store.create_bank("sums", "md5")
    store.create_bank("pdq", "pdq")
    with pytest.raises(BankError, match="threshold is for pdq banks only; bank 'sums'"):
        store.update_bank("sums", threshold=5)
    with pytest.raises(BankError, match="invalid kind 'deny'"):
        store.update_bank("sums", kind="deny")
    with pytest.raises(BankError, match="threshold 300 out of range"):
        store.update_bank("pdq", threshold=300)
    with pytest.raises(BankError, match="enabled must be a bool"):
        store.update_bank("pdq", enabled=1)  # type: ignore[arg-type]
    assert store.update_bank("sums", threshold=None).threshold is None


def test_duplicate_bank_is_refused(store: BankStore) -> None:
    store.create_bank("ncmec", "pdq")
    with pytest.raises(BankError, match="a bank named 'ncmec' already exists"):
        store.create_bank("ncmec", "md5")
    assert [b.signal_type for b in store.list_banks()] == ["pdq"]


# --- segments and metadata ------------------------------------------------------------------


def test_add_segment_with_metadata_from_a_generator(
    store: BankStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BATCH_ROWS", 7)  # several batches
    store.create_bank("ncmec", "pdq")
    consumed: list[int] = []

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for i in range(0, 50, 2):  # every other position has metadata
            consumed.append(i)
            yield i, {"note": f"hash {i}", "case": str(1000 + i), "ünï": "cödé"}

    segment = store.add_segment("ncmec", "segments/ncmec-0001.npy", 50, rows())
    assert isinstance(segment, Segment)
    assert (segment.file, segment.count) == ("segments/ncmec-0001.npy", 50)
    assert len(consumed) == 25
    assert store.get_bank("ncmec").count == 50
    assert store.segments("ncmec") == [segment]
    assert store.segments() == [segment]
    assert store.get_segment(segment.id) == segment

    found = store.metadata(segment.id, [0, 1, 2, 48, 49, 2])
    assert found == {
        0: {"note": "hash 0", "case": "1000", "ünï": "cödé"},
        2: {"note": "hash 2", "case": "1002", "ünï": "cödé"},
        48: {"note": "hash 48", "case": "1048", "ünï": "cödé"},
    }
    assert store.metadata(segment.id, []) == {}
    assert store.metadata(segment.id, np.array([4, 5], dtype=np.int64).tolist()) == {
        4: {"note": "hash 4", "case": "1004", "ünï": "cödé"}
    }
    assert segment.to_dict()["file"] == "segments/ncmec-0001.npy"
    assert _rows(store, "signal_metadata") == 25


def test_metadata_lookup_of_many_positions_is_chunked(store: BankStore) -> None:
    store.create_bank("big", "md5")
    n = 2_345
    segment = store.add_segment("big", "segments/big.npy", n, ((i, {"i": i}) for i in range(n)))
    found = store.metadata(segment.id, list(range(n - 1, -1, -1)))
    assert len(found) == n
    assert all(found[i] == {"i": i} for i in range(n))


def test_segments_are_ordered_and_filtered_by_bank(store: BankStore) -> None:
    store.create_bank("a", "md5")
    store.create_bank("b", "md5")
    s1 = store.add_segment("b", "segments/b1.npy", 1)
    s2 = store.add_segment("a", "segments/a1.npy", 2)
    s3 = store.add_segment("b", "segments/b2.npy", 3)
    assert store.segments() == [s1, s2, s3]
    assert store.segments("b") == [s1, s3]
    assert store.get_bank("b").count == 4
    assert store.get_bank("a").count == 2


def test_failing_metadata_generator_stores_nothing(store: BankStore) -> None:
    store.create_bank("ncmec", "pdq")
    store.add_segment("ncmec", "segments/ok.npy", 4, [(0, {"n": 0})])

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for i in range(25_000):  # past the first batch of 10,000
            if i == 23_456:
                raise RuntimeError("bad CSV row")
            yield i, {"note": str(i)}

    with pytest.raises(RuntimeError, match="bad CSV row"):
        store.add_segment("ncmec", "segments/bad.npy", 30_000, rows())
    assert [s.file for s in store.segments()] == ["segments/ok.npy"]
    assert _rows(store, "segments") == 1
    assert _rows(store, "signal_metadata") == 1
    assert store.get_bank("ncmec").count == 4
    # The file name is free again.
    store.add_segment("ncmec", "segments/bad.npy", 2)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(0, {}), (5, {})], "metadata position 5 out of range for segment 'segments/s.npy'"),
        ([(-1, {})], "metadata position -1 out of range"),
        ([(0, {}), (0, {})], "gives a position twice"),
        ([(0, ["not", "a", "dict"])], "metadata at position 0 .* must be a dict"),
        ([(1, {"x": float("nan")})], "metadata at position 1 .* not JSON-serialisable"),
        ([(1, {"x": object()})], "not JSON-serialisable"),
        ([("1", {})], "metadata position in segment 'segments/s.npy' must be an integer"),
        ([(1,)], "each row must be \\(position, dict\\)"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_is_stored(
    store: BankStore, rows: list[Any], message: str
) -> None:
    store.create_bank("b", "md5")
    with pytest.raises(BankError, match=message):
        store.add_segment("b", "segments/s.npy", 5, rows)
    assert store.segments() == []
    assert _rows(store, "signal_metadata") == 0


@pytest.mark.parametrize(
    ("file", "count", "message"),
    [
        ("/abs/x.npy", 1, "must be relative to the home"),
        ("../x.npy", 1, "must stay inside the home"),
        ("segments/../../x.npy", 1, "must stay inside the home"),
        ("", 1, "invalid segment file"),
        ("segments/x.npy", -1, "segment count must be >= 0"),
        ("segments/x.npy", "3", "segment count must be an integer"),
    ],
)
def test_bad_segment_is_refused(store: BankStore, file: str, count: Any, message: str) -> None:
    store.create_bank("b", "md5")
    with pytest.raises(BankError, match=message):
        store.add_segment("b", file, count)
    assert store.segments() == []


def test_duplicate_segment_file_is_refused(store: BankStore) -> None:
    store.create_bank("a", "md5")
    store.create_bank("b", "md5")
    store.add_segment("a", "segments/x.npy", 1)
    with pytest.raises(BankError, match=r"segment file 'segments/x\.npy' is already recorded"):
        store.add_segment("b", "segments/x.npy", 1)


def test_remove_segment(store: BankStore) -> None:
    store.create_bank("a", "md5")
    keep = store.add_segment("a", "segments/keep.npy", 2, [(0, {"k": 1})])
    gone = store.add_segment("a", "segments/gone.npy", 3, [(1, {"g": 1})])
    store.add_segment("a", "segments/rec.npy", 2, [(0, {"record": "r"}), (1, {"record": "s"})])
    rec = store.segments()[-1]
    store.add_tombstones(gone.id, [0])
    assert store.remove_segment(gone.id) == "segments/gone.npy"
    assert store.remove_segment(rec.id) == "segments/rec.npy"
    assert store.segments() == [keep]
    assert store.get_bank("a").count == 2
    assert _rows(store, "signal_metadata") == 1
    assert _rows(store, "signal_records") == 0
    assert store.record_positions("a", ["r", "s"]) == {}
    assert _rows(store, "tombstones") == 0
    with pytest.raises(BankError, match=f"no segment with id {gone.id}"):
        store.remove_segment(gone.id)
    with pytest.raises(BankError, match=f"no segment with id {gone.id}"):
        store.tombstones(gone.id)
    # Ids are never reused: a stale (segment id, position) cannot name a new segment's hash.
    assert store.add_segment("a", "segments/new.npy", 1).id > gone.id


def test_records_in_metadata_are_indexed_by_record(
    store: BankStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BATCH_ROWS", 3)  # records go in batch by batch
    store.create_bank("ncmec", "pdq")
    store.create_bank("other", "pdq")
    rows: list[tuple[int, dict[str, Any]]] = [
        (0, {"record": "r1", "entry_id": "e1"}),
        (1, {"record": "r2"}),
        (2, {"note": "no record"}),
        (3, {"record": "r1"}),  # an entry with several fingerprints
        (4, {"record": 5}),  # not a string: metadata only
        (6, {"record": "r3"}),
    ]
    s1 = store.add_segment("ncmec", "segments/1.npy", 7, iter(rows))
    s2 = store.add_segment("ncmec", "segments/2.npy", 2, [(1, {"record": "r2"})])
    store.add_segment("other", "segments/o.npy", 1, [(0, {"record": "r1"})])
    assert _rows(store, "signal_records") == 6
    assert store.metadata(s1.id, [4]) == {4: {"record": 5}}

    assert store.record_positions("ncmec", ["r1"]) == {s1.id: [0, 3]}
    assert store.record_positions("ncmec", iter(["r2", "r3", "r2", "nope"])) == {
        s1.id: [1, 6],
        s2.id: [1],
    }
    assert store.record_positions("ncmec", []) == {}
    assert store.record_positions("ncmec", ["5", "no record"]) == {}
    with pytest.raises(BankError, match="no bank named 'missing'"):
        store.record_positions("missing", ["r1"])
    with pytest.raises(BankError, match="record must be a string"):
        store.record_positions("ncmec", [5])  # type: ignore[list-item]
    with store.transaction() as conn:
        assert store.record_positions("other", ["r1", "r2"], conn=conn) == {s2.id + 1: [0]}


def test_record_positions_of_many_records_is_chunked(store: BankStore) -> None:
    store.create_bank("big", "md5")
    n = 1_234
    segment = store.add_segment(
        "big", "segments/big.npy", n, ((i, {"record": f"r{i}"}) for i in range(n))
    )
    wanted = [f"r{i}" for i in range(n - 1, -1, -2)] + ["absent"]
    assert store.record_positions("big", wanted) == {segment.id: list(range(1, n, 2))}


def test_failing_metadata_stores_no_records(store: BankStore) -> None:
    store.create_bank("b", "md5")
    with pytest.raises(BankError, match="gives a position twice"):
        store.add_segment("b", "segments/s.npy", 5, [(0, {"record": "r"}), (0, {"record": "r"})])
    assert _rows(store, "signal_records") == 0
    assert store.record_positions("b", ["r"]) == {}


def test_nul_characters_are_kept_in_metadata_and_refused_in_text_columns(
    store: BankStore,
) -> None:
    """JSON escapes them; a text column of PostgreSQL cannot hold them, so none takes them."""
    store.create_bank("b", "md5")
    segment = store.add_segment("b", "segments/1.npy", 2, [(0, {"note": "a\x00b", "record": "r"})])
    assert store.metadata(segment.id, [0]) == {0: {"note": "a\x00b", "record": "r"}}
    with pytest.raises(BankError, match=r"record at position 1 of segment 'segments/2\.npy' must"):
        store.add_segment("b", "segments/2.npy", 2, [(1, {"record": "r\x00"})])
    with pytest.raises(BankError, match="record must not contain NUL"):
        store.record_positions("b", ["r\x00"])
    with pytest.raises(BankError, match="exchange must not contain NUL"):
        store.set_sync("b", "x\x00", {}, None)
    with pytest.raises(BankError, match="source must not contain NUL"):
        store.update_bank("b", source="\x00")
    assert store.segments() == [segment]
    assert _rows(store, "signal_records") == 1


def test_positions_and_counts_beyond_32_bits(store: BankStore) -> None:
    store.create_bank("huge", "md5")
    n = 2**40
    segment = store.add_segment("huge", "segments/huge.npy", n, [(n - 1, {"last": True})])
    assert store.add_tombstones(segment.id, [2**35, 0]) == 2
    assert store.tombstones(segment.id).tolist() == [0, 2**35]
    assert store.metadata(segment.id, [n - 1]) == {n - 1: {"last": True}}
    assert store.get_segment(segment.id).count == n
    assert store.get_bank("huge").count == n - 2
    assert type(store.get_bank("huge").count) is int


# --- tombstones -----------------------------------------------------------------------------


def test_tombstones_are_idempotent_and_counted(store: BankStore) -> None:
    store.create_bank("ncmec", "pdq")
    s1 = store.add_segment("ncmec", "segments/1.npy", 10)
    s2 = store.add_segment("ncmec", "segments/2.npy", 5)
    assert store.tombstones(s1.id).tolist() == []
    assert store.add_tombstones(s1.id, [7, 3, 3, 9]) == 3
    assert store.add_tombstones(s1.id, [3, 7]) == 0
    assert store.add_tombstones(s1.id, np.array([1, 9], dtype=np.int64)) == 1
    assert store.add_tombstones(s2.id, iter([0])) == 1
    assert store.add_tombstones(s2.id, []) == 0

    stones = store.tombstones(s1.id)
    assert stones.dtype == np.int64
    assert stones.tolist() == [1, 3, 7, 9]
    assert store.tombstones(s2.id).tolist() == [0]
    assert store.get_bank("ncmec").count == 15 - 5


def test_tombstone_out_of_range_is_refused_and_nothing_stored(store: BankStore) -> None:
    store.create_bank("b", "md5")
    segment = store.add_segment("b", "segments/1.npy", 3)
    with pytest.raises(BankError, match="tombstone position 3 out of range for segment"):
        store.add_tombstones(segment.id, [0, 1, 3])
    with pytest.raises(BankError, match="tombstone position -1 out of range"):
        store.add_tombstones(segment.id, [-1])
    with pytest.raises(BankError, match="no segment with id 999"):
        store.add_tombstones(999, [0])
    assert store.tombstones(segment.id).tolist() == []
    assert store.get_bank("b").count == 3


# --- removal cascades -----------------------------------------------------------------------


def test_remove_bank_cascades_and_returns_files(store: BankStore) -> None:
    store.create_bank("gone", "pdq")
    store.create_bank("kept", "pdq")
    g1 = store.add_segment("gone", "segments/g1.npy", 3, [(0, {"a": 1}), (2, {"record": "r"})])
    store.add_segment("gone", "segments/g2.npy", 2, [(1, {"record": "r"})])
    k1 = store.add_segment("kept", "segments/k1.npy", 2, [(0, {"record": "r"})])
    store.add_tombstones(g1.id, [1])
    store.add_tombstones(k1.id, [1])
    store.set_sync("gone", "ncmec", {"c": 1}, {"t": 5})
    store.set_sync("kept", "ncmec", {"c": 2}, None)

    assert store.remove_bank("gone") == ["segments/g1.npy", "segments/g2.npy"]
    assert [b.name for b in store.list_banks()] == ["kept"]
    assert store.segments() == [k1]
    assert _rows(store, "signal_metadata") == 1
    assert _rows(store, "signal_records") == 1
    assert store.record_positions("kept", ["r"]) == {k1.id: [0]}
    assert _rows(store, "tombstones") == 1
    assert _rows(store, "sync_state") == 1
    assert store.get_bank("kept").count == 1
    assert store.metadata(g1.id, [0, 2]) == {}


# --- sync state -----------------------------------------------------------------------------


def test_sync_state_round_trip(store: BankStore) -> None:
    store.create_bank("ncmec", "pdq")
    assert store.get_sync("ncmec") is None
    first = store.set_sync("ncmec", "ncmec", {"environment": "prod", "ids": [1, 2]}, None)
    got = store.get_sync("ncmec")
    assert isinstance(got, SyncState)
    assert got == first
    assert (got.exchange, got.collab, got.checkpoint) == (
        "ncmec",
        {"environment": "prod", "ids": [1, 2]},
        None,
    )
    store.set_sync("ncmec", "ncmec", {"environment": "prod"}, {"next_fetch": 1700000000})
    again = store.get_sync("ncmec")
    assert again is not None
    assert again.checkpoint == {"next_fetch": 1700000000}
    assert again.collab == {"environment": "prod"}
    assert again.updated_at >= got.updated_at
    assert json.loads(json.dumps(again.to_dict()))["checkpoint"] == {"next_fetch": 1700000000}
    assert _rows(store, "sync_state") == 1


def test_sync_state_validation(store: BankStore) -> None:
    store.create_bank("b", "md5")
    with pytest.raises(BankError, match="collab must be a dict"):
        store.set_sync("b", "x", [], None)  # type: ignore[arg-type]
    with pytest.raises(BankError, match="checkpoint must be a dict or None"):
        store.set_sync("b", "x", {}, "t")  # type: ignore[arg-type]
    with pytest.raises(BankError, match="checkpoint of bank 'b' is not JSON-serialisable"):
        store.set_sync("b", "x", {}, {"t": {1, 2}})
    assert store.get_sync("b") is None


# --- transactions ---------------------------------------------------------------------------


def test_import_is_one_transaction(store: BankStore) -> None:
    store.create_bank("ncmec", "pdq")
    with store.transaction():
        store.add_segment("ncmec", "segments/1.npy", 2, [(0, {"n": 1})])
        store.set_sync("ncmec", "ncmec", {"c": 1}, {"t": 1})
    assert store.get_bank("ncmec").count == 2

    with pytest.raises(RuntimeError, match="fetch failed"), store.transaction() as conn:
        store.add_segment("ncmec", "segments/2.npy", 5, [(0, {"n": 2})], conn=conn)
        store.set_sync("ncmec", "ncmec", {"c": 1}, {"t": 2}, conn=conn)
        assert store.get_bank("ncmec").count == 7  # the transaction sees its own writes
        raise RuntimeError("fetch failed")
    assert [s.file for s in store.segments()] == ["segments/1.npy"]
    sync = store.get_sync("ncmec")
    assert sync is not None
    assert sync.checkpoint == {"t": 1}
    assert store.get_bank("ncmec").count == 2


def test_a_failing_step_inside_a_transaction_is_undone_alone(store: BankStore) -> None:
    store.create_bank("b", "md5")
    with store.transaction():
        store.add_segment("b", "segments/1.npy", 3)
        with pytest.raises(BankError, match="out of range"):
            store.add_segment("b", "segments/2.npy", 3, [(0, {}), (9, {})])
        with pytest.raises(RuntimeError), store.transaction():
            store.create_bank("c", "md5")
            raise RuntimeError
        store.create_bank("d", "md5")
    assert [s.file for s in store.segments()] == ["segments/1.npy"]
    assert _rows(store, "signal_metadata") == 0
    assert [b.name for b in store.list_banks()] == ["b", "d"]


def test_other_connections_see_only_committed_state(backend: Backend) -> None:
    with backend.open(busy_timeout=0.1) as one, backend.open(busy_timeout=0.1) as two:
        with one.transaction():
            one.create_bank("pending", "md5")
            assert two.list_banks() == []  # readers are not blocked by the writer (SQLite: WAL)
            with backend.open(busy_timeout=0.1) as three:  # nor is opening the store
                assert three.list_banks() == []
            with pytest.raises(BankError, match="cannot begin a transaction"):
                two.create_bank("other", "md5")
        assert [b.name for b in two.list_banks()] == ["pending"]


def test_closed_store_refuses_work(backend: Backend) -> None:
    store = backend.open()
    store.close()
    store.close()
    with pytest.raises(BankError, match="is closed"):
        store.list_banks()


# --- home -----------------------------------------------------------------------------------


def test_gardien_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GARDIEN_HOME", str(tmp_path / "from-env"))
    assert gardien_home() == tmp_path / "from-env"
    assert gardien_home(tmp_path / "explicit") == tmp_path / "explicit"
    assert not (tmp_path / "from-env").exists()  # not created

    monkeypatch.delenv("GARDIEN_HOME")
    default = gardien_home()
    assert default.name.lower() == "gardien"
    monkeypatch.setenv("GARDIEN_HOME", "")
    assert gardien_home() == default


def test_gardien_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gardien_database_url() is None  # SQLite in the home
    monkeypatch.setenv("GARDIEN_DATABASE_URL", " postgresql+psycopg://gardien@db/gardien ")
    assert gardien_database_url() == "postgresql+psycopg://gardien@db/gardien"
    assert gardien_database_url("postgresql+psycopg://x@y/z") == "postgresql+psycopg://x@y/z"
    assert gardien_database_url("") is None  # an explicit "" overrides the variable
    monkeypatch.setenv("GARDIEN_DATABASE_URL", "  ")
    assert gardien_database_url() is None
