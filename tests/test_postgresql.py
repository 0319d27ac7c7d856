"""The bank store on PostgreSQL: what tests/test_store.py (run on both databases) cannot show.

Schema by migration, writers serialised by the advisory lock, hash banks and the command line end
to end, and database URLs: the password is never shown, a missing driver is named.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner, Result
from sqlalchemy import inspect

from gardien.cli import main
from gardien.hashing.banks import HashBanks
from gardien.hashing.store import PG_WRITE_LOCK, SCHEMA, BankError, BankStore
from tests.hashing_fixtures import flip_bits, random_hashes, write_list
from tests.pg import PgServer, head

SECRET = "s3cret-Pa55"


def test_fresh_database_gets_the_schema_of_store_py(pg_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with BankStore(home, url=pg_url) as store, store.transaction() as conn:
        tables = set(inspect(conn).get_table_names())
        migration = MigrationContext.configure(conn)
        assert tables == set(SCHEMA.tables) | {"alembic_version"}
        assert migration.get_current_revision() == head()
        assert compare_metadata(migration, SCHEMA) == []
        assert store.db_path is None
    assert (home / "segments").is_dir()
    assert not (home / "gardien.db").exists()  # the metadata is in PostgreSQL, not the home


def test_a_plain_postgresql_url_means_psycopg(pg_url: str, tmp_path: Path) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with BankStore(tmp_path / "home", url=plain) as store:
        assert store.database.startswith("postgresql+psycopg://")
        assert store.create_bank("b", "md5").name == "b"


def test_writers_hold_the_advisory_lock_and_readers_one_snapshot(
    pg_url: str, tmp_path: Path
) -> None:
    with BankStore(tmp_path / "home", url=pg_url) as store:
        with store.transaction() as conn:
            held = conn.exec_driver_sql(
                "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
            ).scalars()
            assert list(held) == [PG_WRITE_LOCK]
            isolation = conn.exec_driver_sql("SHOW transaction_isolation").scalar()
            assert isolation == "read committed"  # sees what the writer before it committed
        with store._begin(write=False) as conn:
            assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "repeatable read"


def test_concurrent_writers_take_turns(pg_url: str, tmp_path: Path) -> None:
    """Each writer reads, then writes what it read: interleaved, two would create one name.

    Each has its own store (engine, connections), as processes would; they also open the new
    database together, so they race to create the schema too.
    """
    home = tmp_path / "home"

    def write(_: int) -> None:
        with BankStore(home, url=pg_url, busy_timeout=20) as store, store.transaction():
            n = len(store.list_banks())
            time.sleep(0.02)  # another writer would get in here, were writers not serialised
            store.create_bank(f"b{n}", "md5")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(write, range(6)))
    with BankStore(home, url=pg_url) as store:
        assert [b.name for b in store.list_banks()] == [f"b{i}" for i in range(6)]


def test_a_writer_waits_for_the_lock_then_goes_on(pg_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with BankStore(home, url=pg_url) as one, BankStore(home, url=pg_url, busy_timeout=20) as two:
        done = threading.Event()
        with one.transaction():
            one.create_bank("first", "md5")
            waiter = threading.Thread(target=lambda: (two.create_bank("second", "md5"), done.set()))
            waiter.start()
            assert not done.wait(0.3)  # blocked behind the open transaction
        waiter.join(10)
        assert done.is_set()
        assert [b.name for b in two.list_banks()] == ["first", "second"]


def test_datetimes_are_utc_whatever_the_session_time_zone(pg_url: str, tmp_path: Path) -> None:
    tokyo = pg_url + "&options=-c%20timezone%3DAsia%2FTokyo"
    with BankStore(tmp_path / "home", url=tokyo) as store:
        with store.transaction() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Tokyo"
        created = store.create_bank("b", "pdq", threshold=5)
        got = store.get_bank("b")
        assert got == created
        assert got.created_at.utcoffset() == timedelta(0)
        assert got.to_dict()["created_at"].endswith("+00:00")
        assert (got.enabled, got.threshold, type(got.count)) == (True, 5, int)


# --- passwords, drivers, URLs ---------------------------------------------------------------


def test_the_password_is_never_shown(pg_server: PgServer, pg_database: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = pg_server.url(pg_database, password=SECRET)  # the server trusts, so it opens
    with BankStore(home, url=url) as one, BankStore(home, url=url, busy_timeout=0.05) as two:
        for shown in (one.database, repr(one)):
            assert SECRET not in shown and "postgres:***@" in shown
        with one.transaction():
            one.create_bank("a", "md5")
            with pytest.raises(BankError, match="cannot begin a transaction on") as caught:
                two.create_bank("b", "md5")
        assert SECRET not in str(caught.value) and "***" in str(caught.value)

    missing = pg_server.url("no_such_database", password=SECRET)
    with pytest.raises(BankError, match="cannot connect to postgresql") as caught:
        BankStore(home, url=missing)
    assert "no_such_database" in str(caught.value) and SECRET not in str(caught.value)

    in_query = pg_server.url(pg_database) + f"&password={SECRET}"
    with BankStore(home, url=in_query) as store:
        assert SECRET not in store.database and "password=%2A%2A%2A" in store.database


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"not a url {SECRET}", "invalid database URL"),
        (f"mysql://gardien:{SECRET}@db/gardien", "unsupported database mysql://gardien:\\*\\*\\*@"),
        (f"postgresql+nodriver://gardien:{SECRET}@db/gardien", "cannot open postgresql\\+nodriver"),
    ],
)
def test_bad_urls_are_refused_without_the_password(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(BankError, match=message) as caught:
        BankStore(tmp_path / "home", url=url)
    assert SECRET not in str(caught.value)
    assert not (tmp_path / "home").exists()


def test_a_missing_driver_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    url = f"postgresql+psycopg://gardien:{SECRET}@localhost/gardien"
    with pytest.raises(BankError, match=r"pip install 'gardien\[postgres\]'") as caught:
        BankStore(tmp_path / "home", url=url)
    assert SECRET not in str(caught.value)


# --- hash banks and the command line --------------------------------------------------------


def _hex(row: np.ndarray[Any, Any]) -> str:
    return bytes(row).hex()


def test_hash_banks_end_to_end(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    first, second = random_hashes(11, 4), random_hashes(12, 3)
    with HashBanks(home, database_url=pg_url) as banks:
        banks.create("known", "pdq", category="known-csam")
        assert banks.import_list("known", write_list(tmp_path / "1.txt", first)).added == 4
        path = tmp_path / "2.csv"
        path.write_text("pdq,note\n" + "".join(f"{_hex(r)},n{i}\n" for i, r in enumerate(second)))
        assert banks.import_list("known", path).added == 3
        near = flip_bits(second[1], list(range(9)))
        [hit] = banks.matcher().match("pdq", near[None])[0].matches
        assert (hit.bank, hit.hash, hit.distance) == ("known", _hex(second[1]), 9)
        assert hit.metadata == {"category": "known-csam", "note": "n1"}

        assert banks.remove_hashes("known", first[:2]) == 2
        assert banks.get("known").count == 5
        assert banks.matcher().match("pdq", first[:1])[0].matches == []
        banks.compact("known")
        assert len(banks.store.segments("known")) == 1
        results = banks.matcher().match("pdq", np.vstack([first, second]))
        assert [len(r.matches) for r in results] == [0, 0, 1, 1, 1, 1, 1]
        out = io.BytesIO()
        assert banks.export_text("known", out) == 5
    assert not (home / "gardien.db").exists()

    monkeypatch.setenv("GARDIEN_DATABASE_URL", pg_url)  # what HashBanks falls back on
    with HashBanks(home) as banks:
        assert [(b.name, b.count) for b in banks.list_banks()] == [("known", 5)]
    with HashBanks(home, database_url="") as banks:  # "" overrides it: SQLite in the home
        assert banks.list_banks() == []
        assert banks.store.db_path == home / "gardien.db"


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_command_line_reads_gardien_database_url(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("GARDIEN_HOME", str(home))
    stored = random_hashes(13, 5)
    listed = write_list(tmp_path / "list.txt", stored)
    result = _run("bank", "import", "k", str(listed), "--type", "pdq", "--database-url", pg_url)
    assert result.exit_code == 0, result.output
    assert not (home / "gardien.db").exists()

    monkeypatch.setenv("GARDIEN_DATABASE_URL", pg_url)
    result = _run("match", "--hashes", str(listed), "--type", "pdq")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["matches"][0]["hash"] for r in records] == [_hex(r) for r in stored]

    assert _run("bank", "update", "k", "--disable").exit_code == 0
    result = _run("match", "--hashes", str(listed), "--type", "pdq")
    assert result.exit_code == 1
    assert "no enabled block bank in postgresql+psycopg://postgres:***@" in result.stderr
    result = _run("match", "--hashes", str(listed), "--type", "pdq", "--database-url", "")
    assert result.exit_code == 1 and "no banks under" in result.stderr  # SQLite: none there
