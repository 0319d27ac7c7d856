"""The bank store: metadata of hash banks in an embedded SQL database.

The hashes live in memory-mappable numpy files ("segments") under the home directory; this store
keeps what describes them: the banks, which segment files belong to which bank, per-hash metadata
(position within a segment → a JSON object), the exchange record each synced hash came from (its
metadata's ``"record"``, indexed so that a deletion naming only the record can be applied),
tombstones (single hashes removed without rewriting a segment) and the sync state of banks fed by
an exchange.

It is reached through SQLAlchemy Core, its schema made by Alembic migrations run on open: SQLite
(``home/gardien.db``, WAL) by default, or PostgreSQL given a database URL. The segment files stay
under the home either way, so every process sharing a PostgreSQL database must share the home too.

Writers are serialised on both: SQLite's ``BEGIN IMMEDIATE`` takes the database's write lock,
PostgreSQL's writers take one transaction-scoped advisory lock (:data:`PG_WRITE_LOCK`) first. Each
waits for the other writers at most ``busy_timeout`` seconds. Readers never wait for writers and
see one snapshot per transaction (PostgreSQL's are ``REPEATABLE READ``).

Transactions
------------
Every method runs in a transaction of its own, unless it joins one:

* ``with store.transaction() as conn:`` opens one; store methods called inside the block (in the
  same thread or task) join it without being told, and so does any method given ``conn=conn``.
  It commits when the block ends and rolls back if the block raises::

      with store.transaction() as conn:
          segment = store.add_segment("ncmec", file, count, rows)
          store.set_sync("ncmec", "ncmec", collab, checkpoint)

* A method that joins a transaction runs inside a savepoint: if it fails, what it did is undone
  and the caller's transaction stands, so a caller that catches the error may go on.
* A nested ``store.transaction()`` is a savepoint too.

Files and rows: write a segment's file before :meth:`BankStore.add_segment` (delete it if that
fails); delete the files :meth:`BankStore.remove_segment` / :meth:`BankStore.remove_bank` return
only after the transaction commits.
"""

from __future__ import annotations

import json
import operator
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import MappingProxyType, TracebackType
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, Row, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.sql.dml import Insert

from gardien.core.errors import GardienError

SIGNAL_TYPES: Final = ("pdq", "md5", "sha256")
KINDS: Final = ("block", "allow")
#: Largest PDQ Hamming distance (a PDQ hash has 256 bits).
MAX_THRESHOLD: Final = 256
DB_FILE: Final = "gardien.db"
SEGMENTS_DIR: Final = "segments"
#: Rows per ``executemany`` when inserting metadata or tombstones.
BATCH_ROWS: Final = 10_000
#: Positions per ``IN (...)`` query, under SQLite's limit on bound variables.
QUERY_CHUNK: Final = 500
#: Seconds a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_S: Final = 30.0
#: PostgreSQL advisory lock key ("gardien" in ASCII) that writers hold for their transaction; it
#: serialises the stores writing to one database (advisory locks are per database).
PG_WRITE_LOCK: Final = 0x67_61_72_64_69_65_6E

_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"


class BankError(GardienError):
    """A bank operation failed: unknown bank or segment, invalid field, duplicate name."""


class _Unset:
    """Type of :data:`UNSET`."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: "Leave as it is", where ``None`` is a value (:meth:`BankStore.update_bank`'s ``threshold``).
UNSET: Final = _Unset()


# --- schema (mirrors migrations/versions; a new revision changes both) --------------------------

#: The schema, for Alembic's autogenerate and for tests.
SCHEMA = MetaData()

banks = Table(
    "banks",
    SCHEMA,
    Column("id", Integer, nullable=False),
    Column("name", String(64), nullable=False),
    Column("signal_type", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("threshold", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("id", name="pk_banks"),
    UniqueConstraint("name", name="uq_banks_name"),
    sqlite_autoincrement=True,
)

segments = Table(
    "segments",
    SCHEMA,
    Column("id", Integer, nullable=False),
    Column("bank_id", Integer, nullable=False),
    Column("file", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("id", name="pk_segments"),
    ForeignKeyConstraint(
        ["bank_id"], ["banks.id"], name="fk_segments_bank_id_banks", ondelete="CASCADE"
    ),
    UniqueConstraint("file", name="uq_segments_file"),
    Index("ix_segments_bank_id", "bank_id"),
    sqlite_autoincrement=True,
)

signal_metadata = Table(
    "signal_metadata",
    SCHEMA,
    Column("segment_id", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    PrimaryKeyConstraint("segment_id", "position", name="pk_signal_metadata"),
    ForeignKeyConstraint(
        ["segment_id"],
        ["segments.id"],
        name="fk_signal_metadata_segment_id_segments",
        ondelete="CASCADE",
    ),
)

signal_records = Table(
    "signal_records",
    SCHEMA,
    Column("segment_id", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("record", Text, nullable=False),
    PrimaryKeyConstraint("segment_id", "position", name="pk_signal_records"),
    ForeignKeyConstraint(
        ["segment_id"],
        ["segments.id"],
        name="fk_signal_records_segment_id_segments",
        ondelete="CASCADE",
    ),
    Index("ix_signal_records_record", "record"),
    sqlite_with_rowid=False,
)

tombstones = Table(
    "tombstones",
    SCHEMA,
    Column("segment_id", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
    PrimaryKeyConstraint("segment_id", "position", name="pk_tombstones"),
    ForeignKeyConstraint(
        ["segment_id"],
        ["segments.id"],
        name="fk_tombstones_segment_id_segments",
        ondelete="CASCADE",
    ),
    sqlite_with_rowid=False,
)

sync_state = Table(
    "sync_state",
    SCHEMA,
    Column("bank_id", Integer, nullable=False),
    Column("exchange", Text, nullable=False),
    Column("collab", Text, nullable=False),
    Column("checkpoint", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("bank_id", name="pk_sync_state"),
    ForeignKeyConstraint(
        ["bank_id"], ["banks.id"], name="fk_sync_state_bank_id_banks", ondelete="CASCADE"
    ),
)


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bank:
    """A hash bank. ``count``: hashes in its segments, less the tombstoned ones."""

    id: int
    name: str
    signal_type: str
    kind: str
    source: str
    category: str
    threshold: int | None
    enabled: bool
    description: str
    created_at: datetime
    updated_at: datetime
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "signal_type": self.signal_type,
            "kind": self.kind,
            "source": self.source,
            "category": self.category,
            "threshold": self.threshold,
            "enabled": self.enabled,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "count": self.count,
        }


@dataclass(frozen=True)
class Segment:
    """A segment file of a bank; ``file`` is relative to the home directory."""

    id: int
    bank_id: int
    file: str
    count: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bank_id": self.bank_id,
            "file": self.file,
            "count": self.count,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class SyncState:
    """Where an exchange-fed bank stands: the exchange, its collaboration config, a checkpoint."""

    exchange: str
    collab: dict[str, Any]
    checkpoint: dict[str, Any] | None
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "collab": self.collab,
            "checkpoint": self.checkpoint,
            "updated_at": self.updated_at.isoformat(),
        }


# --- helpers ------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """In UTC, as the store writes them: SQLite hands back naive datetimes, PostgreSQL ones in
    the session's time zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Strict JSON (no NaN: PostgreSQL's json refuses it), compact; one encoder for millions of rows.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _dumps(value: Any, what: str) -> str:
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise BankError(f"{what} is not JSON-serialisable: {exc}") from None


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise BankError(f"{field} must be a string, not {type(value).__name__}")
    if "\x00" in value:  # PostgreSQL's text cannot hold it: refused on every database alike
        raise BankError(f"{field} must not contain NUL characters")
    return value


def _int(value: object, field: str) -> int:
    if isinstance(value, bool):
        raise BankError(f"{field} must be an integer, not bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise BankError(f"{field} must be an integer, not {type(value).__name__}") from None


def _check_name(name: object) -> str:
    text = _text(name, "bank name")
    if not _NAME_RE.fullmatch(text):
        raise BankError(
            f"invalid bank name {text!r}: 1 to 64 characters of a-z, 0-9, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return text


def _check_signal_type(signal_type: object) -> str:
    text = _text(signal_type, "signal_type")
    if text not in SIGNAL_TYPES:
        raise BankError(f"invalid signal_type {text!r} (one of: {', '.join(SIGNAL_TYPES)})")
    return text


def _check_kind(kind: object) -> str:
    text = _text(kind, "kind")
    if text not in KINDS:
        raise BankError(f"invalid kind {text!r} (one of: {', '.join(KINDS)})")
    return text


def _check_threshold(threshold: object, signal_type: str, bank: str) -> int | None:
    if threshold is None:
        return None
    value = _int(threshold, "threshold")
    if signal_type != "pdq":
        raise BankError(
            f"threshold is for pdq banks only; bank {bank!r} holds {signal_type} hashes"
        )
    if not 0 <= value <= MAX_THRESHOLD:
        raise BankError(f"threshold {value} out of range 0..{MAX_THRESHOLD}")
    return value


def _check_file(file: object) -> str:
    text = _text(file, "segment file")
    if not text:
        raise BankError(f"invalid segment file {text!r}")
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute():
        raise BankError(f"segment file {text!r} must be relative to the home directory")
    if ".." in PurePosixPath(text.replace("\\", "/")).parts:
        raise BankError(f"segment file {text!r} must stay inside the home directory")
    return text


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _bank_select() -> Select[Any]:
    hashes = (
        select(func.coalesce(func.sum(segments.c["count"]), 0))
        .where(segments.c.bank_id == banks.c.id)
        .scalar_subquery()
    )
    removed = (
        select(func.count())
        .select_from(tombstones.join(segments, tombstones.c.segment_id == segments.c.id))
        .where(segments.c.bank_id == banks.c.id)
        .scalar_subquery()
    )
    return select(banks, (hashes - removed).label("count"))


def _bank(row: Row[Any]) -> Bank:
    m = row._mapping
    return Bank(
        id=m["id"],
        name=m["name"],
        signal_type=m["signal_type"],
        kind=m["kind"],
        source=m["source"],
        category=m["category"],
        threshold=m["threshold"],
        enabled=bool(m["enabled"]),
        description=m["description"],
        created_at=_aware(m["created_at"]),
        updated_at=_aware(m["updated_at"]),
        count=int(m["count"]),
    )


def _segment(row: Row[Any]) -> Segment:
    m = row._mapping
    return Segment(
        id=m["id"],
        bank_id=m["bank_id"],
        file=m["file"],
        count=int(m["count"]),
        created_at=_aware(m["created_at"]),
    )


def _is_write(conn: Connection) -> bool:
    """Whether the transaction beginning on ``conn`` is a writer's (see ``BankStore._begin``)."""
    return bool(conn.get_execution_options().get("gardien_write", False))


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Let the store say when transactions begin (pysqlite's own handling begins them late
        # and never for DDL), so that DDL, savepoints and "BEGIN IMMEDIATE" behave.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that reads then writes
        # fails at once ("database is locked") when another writer got in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _is_write(conn) else "BEGIN")

    return engine


def _postgresql_engine(url: URL, busy_timeout: float) -> Engine:
    engine = create_engine(url)
    lock_timeout_ms = max(1, round(busy_timeout * 1000))  # 0 would mean "wait for ever"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if _is_write(conn):
            # What BEGIN IMMEDIATE is to SQLite: writers queue here, one at a time, before they
            # read what they will change (READ COMMITTED: later statements see the last commit).
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {lock_timeout_ms}")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")
        else:
            # One snapshot for the whole read, as on SQLite (READ COMMITTED takes one per
            # statement); a read-only REPEATABLE READ transaction never fails to serialise.
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    return engine


#: The databases the store runs on, by SQLAlchemy backend name.
_ENGINES: Final[Mapping[str, Callable[[URL, float], Engine]]] = MappingProxyType(
    {"sqlite": _sqlite_engine, "postgresql": _postgresql_engine}
)


def _display(url: URL) -> str:
    """The URL for messages, its password hidden (also one given as a query parameter)."""
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.render_as_string(hide_password=True)


def _secrets(url: URL) -> list[str]:
    """The URL's passwords, to blank out of driver messages quoted in errors."""
    query = url.query.get("password", ())
    found = [url.password, *((query,) if isinstance(query, str) else query)]
    return [str(secret) for secret in found if secret]


def _engine_for(url: str, busy_timeout: float) -> Engine:
    """An engine for a database URL. Plain ``postgresql://`` means psycopg 3 (the ``postgres``
    extra), not SQLAlchemy's default psycopg2."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Not the parser's message: it may quote the URL, password and all.
        raise BankError(
            "invalid database URL: expected dialect[+driver]://user@host/database, "
            "e.g. postgresql+psycopg://gardien@localhost/gardien"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    make = _ENGINES.get(parsed.get_backend_name())
    if make is None:
        raise BankError(
            f"unsupported database {_display(parsed)}: the bank store runs on SQLite or PostgreSQL"
        )
    try:
        return make(parsed, busy_timeout)
    except ImportError as exc:
        raise BankError(
            f"cannot open {_display(parsed)}: its driver is not installed ({exc}); "
            "for PostgreSQL: pip install 'gardien[postgres]'"
        ) from None
    except ArgumentError as exc:
        raise BankError(f"cannot open {_display(parsed)}: {exc}") from None


#: The transaction opened by :meth:`BankStore.transaction`, per store, in this thread or task.
_ACTIVE: ContextVar[Mapping[int, Connection]] = ContextVar(
    "gardien_bank_store_tx", default=MappingProxyType({})
)


# --- the store ----------------------------------------------------------------------------------


class BankStore:
    """Metadata of the hash banks kept under ``home`` (see the module docstring for transactions).

    ``url``: a SQLAlchemy URL of the database (``postgresql+psycopg://user@host/name``), or
    ``None`` for SQLite in ``home/gardien.db``. Opening creates ``home``, ``home/segments`` and the
    SQLite file as needed and brings the schema up to date. ``busy_timeout``: seconds a writer
    waits for another's write lock. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, home: Path, *, url: str | None = None, busy_timeout: float = BUSY_TIMEOUT_S
    ) -> None:
        self.home = Path(home)
        self.segments_dir = self.home / SEGMENTS_DIR
        if url is None:
            default = URL.create("sqlite", database=str(self.home / DB_FILE))
            self._engine = _sqlite_engine(default, busy_timeout)
        else:
            self._engine = _engine_for(url, busy_timeout)
        db = self._engine.url
        file = db.database if db.get_backend_name() == "sqlite" else None
        #: The SQLite database file; ``None`` for a database server (or SQLite in memory).
        self.db_path = Path(file) if file and file != ":memory:" else None
        #: The database, as messages name it: the SQLite file, or the URL without its password.
        self.database = str(self.db_path) if self.db_path is not None else _display(db)
        self._secrets = _secrets(db)
        self._closed = False
        try:
            try:
                self.segments_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BankError(f"cannot create the gardien home {self.home}: {exc}") from None
            self._upgrade()
        except BaseException:
            self.close()
            raise

    # -- lifecycle

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

        config = Config()
        # ConfigParser interpolates '%': an install path may hold one.
        config.set_main_option("script_location", str(_MIGRATIONS).replace("%", "%%"))
        config.set_main_option("path_separator", "os")
        try:
            # Up to date (the usual case): no write lock, so opening a store never waits for
            # another process's long import.
            heads = set(ScriptDirectory.from_config(config).get_heads())
            with self._begin(write=False) as conn:
                if set(MigrationContext.configure(conn).get_current_heads()) == heads:
                    return
            with self._begin(write=True) as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except CommandError as exc:
            raise self._error(
                f"cannot bring {self.database} up to date: {exc} "
                "(was it written by a newer version of gardien?)"
            ) from None
        except SQLAlchemyError as exc:
            raise self._error(f"cannot open {self.database}: {exc}") from None

    def _error(self, message: str) -> BankError:
        """An error quoting the database or its driver, with any password blanked out."""
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return BankError(message)

    def close(self) -> None:
        """Close the database. The store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> BankStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.db_path is not None and self.db_path == self.home / DB_FILE:
            return f"BankStore({str(self.home)!r})"
        return f"BankStore({str(self.home)!r}, url={self.database!r})"

    # -- transactions

    @contextmanager
    def _begin(self, *, write: bool) -> Iterator[Connection]:
        if self._closed:
            raise BankError(f"the bank store at {self.home} is closed")
        try:
            opened = self._engine.connect()
        except DBAPIError as exc:
            raise self._error(f"cannot connect to {self.database}: {exc.orig}") from None
        with opened as conn:
            if write:
                conn.execution_options(gardien_write=True)
            try:
                tx = conn.begin()
            except OperationalError as exc:
                raise self._error(
                    f"cannot begin a transaction on {self.database} "
                    f"(another process writing for over busy_timeout?): {exc.orig}"
                ) from None
            with tx:
                yield conn

    def _joined(self, conn: Connection | None) -> Connection | None:
        if conn is not None:
            return conn
        return _ACTIVE.get().get(id(self))

    @contextmanager
    def _write(self, conn: Connection | None) -> Iterator[Connection]:
        joined = self._joined(conn)
        if joined is None:
            with self._begin(write=True) as own:
                yield own
        else:
            with joined.begin_nested():
                yield joined

    @contextmanager
    def _read(self, conn: Connection | None) -> Iterator[Connection]:
        joined = self._joined(conn)
        if joined is None:
            with self._begin(write=False) as own:
                yield own
        else:
            yield joined

    def transaction(self) -> AbstractContextManager[Connection]:
        """One transaction for several operations: committed when the block ends, rolled back if
        it raises. Store methods called inside join it; a nested call makes a savepoint."""
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        active = _ACTIVE.get()
        outer = active.get(id(self))
        if outer is not None:
            with outer.begin_nested():
                yield outer
            return
        with self._begin(write=True) as conn:
            token = _ACTIVE.set({**active, id(self): conn})
            try:
                yield conn
            finally:
                _ACTIVE.reset(token)

    # -- banks

    def _bank_row(self, conn: Connection, name: str) -> Bank:
        row = conn.execute(_bank_select().where(banks.c.name == name)).first()
        if row is None:
            names = sorted(conn.execute(select(banks.c.name)).scalars())
            known = ", ".join(names) if names else "none"
            raise BankError(f"no bank named {name!r} (banks: {known})")
        return _bank(row)

    def create_bank(
        self,
        name: str,
        signal_type: str,
        *,
        kind: str = "block",
        source: str = "",
        category: str = "",
        threshold: int | None = None,
        description: str = "",
        conn: Connection | None = None,
    ) -> Bank:
        """Create an empty, enabled bank. ``threshold``: PDQ distance for this bank (pdq only)."""
        name = _check_name(name)
        signal_type = _check_signal_type(signal_type)
        values = {
            "name": name,
            "signal_type": signal_type,
            "kind": _check_kind(kind),
            "source": _text(source, "source"),
            "category": _text(category, "category"),
            "threshold": _check_threshold(threshold, signal_type, name),
            "enabled": True,
            "description": _text(description, "description"),
        }
        with self._write(conn) as c:
            if c.execute(select(banks.c.id).where(banks.c.name == name)).first() is not None:
                raise BankError(f"a bank named {name!r} already exists")
            now = _now()
            try:
                c.execute(insert(banks).values(**values, created_at=now, updated_at=now))
            except IntegrityError:
                raise BankError(f"a bank named {name!r} already exists") from None
            return self._bank_row(c, name)

    def get_bank(self, name: str, *, conn: Connection | None = None) -> Bank:
        with self._read(conn) as c:
            return self._bank_row(c, name)

    def list_banks(self, *, conn: Connection | None = None) -> list[Bank]:
        """Every bank, by name (sorted here: PostgreSQL's collations need not sort as SQLite)."""
        with self._read(conn) as c:
            found = [_bank(row) for row in c.execute(_bank_select())]
        return sorted(found, key=operator.attrgetter("name"))

    def update_bank(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        threshold: int | _Unset | None = UNSET,
        kind: str | None = None,
        source: str | None = None,
        category: str | None = None,
        description: str | None = None,
        conn: Connection | None = None,
    ) -> Bank:
        """Change the fields given (``threshold=None`` goes back to the caller's default)."""
        values: dict[str, Any] = {}
        if enabled is not None:
            if not isinstance(enabled, bool):
                raise BankError(f"enabled must be a bool, not {type(enabled).__name__}")
            values["enabled"] = enabled
        if kind is not None:
            values["kind"] = _check_kind(kind)
        if source is not None:
            values["source"] = _text(source, "source")
        if category is not None:
            values["category"] = _text(category, "category")
        if description is not None:
            values["description"] = _text(description, "description")
        with self._write(conn) as c:
            bank = self._bank_row(c, name)
            if not isinstance(threshold, _Unset):
                values["threshold"] = _check_threshold(threshold, bank.signal_type, bank.name)
            if not values:
                return bank
            c.execute(
                update(banks).where(banks.c.id == bank.id).values(**values, updated_at=_now())
            )
            return self._bank_row(c, name)

    def remove_bank(self, name: str, *, conn: Connection | None = None) -> list[str]:
        """Delete a bank with its segments, metadata, records, tombstones and sync state.

        Returns its segment files (relative to the home): delete them once the transaction has
        committed.
        """
        with self._write(conn) as c:
            bank = self._bank_row(c, name)
            seg_ids = select(segments.c.id).where(segments.c.bank_id == bank.id)
            files = list(
                c.execute(
                    select(segments.c.file)
                    .where(segments.c.bank_id == bank.id)
                    .order_by(segments.c.id)
                ).scalars()
            )
            # Explicit, not left to ON DELETE CASCADE: right even where foreign keys are off.
            c.execute(delete(signal_metadata).where(signal_metadata.c.segment_id.in_(seg_ids)))
            c.execute(delete(signal_records).where(signal_records.c.segment_id.in_(seg_ids)))
            c.execute(delete(tombstones).where(tombstones.c.segment_id.in_(seg_ids)))
            c.execute(delete(segments).where(segments.c.bank_id == bank.id))
            c.execute(delete(sync_state).where(sync_state.c.bank_id == bank.id))
            c.execute(delete(banks).where(banks.c.id == bank.id))
            return files

    # -- segments

    def _segment_row(self, conn: Connection, segment_id: int) -> Segment:
        sid = _int(segment_id, "segment id")
        row = conn.execute(select(segments).where(segments.c.id == sid)).first()
        if row is None:
            raise BankError(f"no segment with id {sid}")
        return _segment(row)

    def _touch(self, conn: Connection, bank_id: int) -> None:
        conn.execute(update(banks).where(banks.c.id == bank_id).values(updated_at=_now()))

    def add_segment(
        self,
        bank_name: str,
        file: str,
        count: int,
        metadata: Iterable[tuple[int, dict[str, Any]]] | None = None,
        *,
        conn: Connection | None = None,
    ) -> Segment:
        """Record a segment file of ``count`` hashes, with metadata per position (0-based).

        ``metadata`` is read lazily, :data:`BATCH_ROWS` rows at a time. A dict whose
        ``"record"`` is a string (the exchange record the hash came from) is also indexed by that
        record (:meth:`record_positions`). Segment and metadata are stored together or not at
        all: if anything fails, including the iterable raising halfway, nothing is stored.
        """
        file = _check_file(file)
        count = _int(count, "segment count")
        if count < 0:
            raise BankError(f"segment count must be >= 0, not {count}")
        with self._write(conn) as c:
            bank = self._bank_row(c, bank_name)
            if c.execute(select(segments.c.id).where(segments.c.file == file)).first():
                raise BankError(f"segment file {file!r} is already recorded")
            try:
                sid = c.execute(
                    insert(segments)
                    .values(bank_id=bank.id, file=file, count=count, created_at=_now())
                    .returning(segments.c.id)
                ).scalar_one()
            except IntegrityError as exc:
                raise BankError(f"cannot record segment file {file!r}: {exc.orig}") from None
            if metadata is not None:
                self._insert_metadata(c, sid, file, count, metadata)
            self._touch(c, bank.id)
            return self._segment_row(c, sid)

    def _insert_metadata(
        self,
        conn: Connection,
        sid: int,
        file: str,
        count: int,
        rows: Iterable[tuple[int, dict[str, Any]]],
    ) -> None:
        sql = _BulkInsert(conn, insert(signal_metadata), ("segment_id", "position", "data"))
        record_sql = _BulkInsert(conn, insert(signal_records), ("segment_id", "position", "record"))
        encode = _ENCODER.encode
        for chunk in _chunks(rows, BATCH_ROWS):
            params: list[tuple[int, int, str]] = []
            records: list[tuple[int, int, str]] = []
            for item in chunk:
                try:
                    position, data = item
                except (TypeError, ValueError):
                    raise BankError(
                        f"metadata for segment {file!r}: each row must be (position, dict), "
                        f"not {item!r:.80}"
                    ) from None
                pos = (
                    position
                    if type(position) is int
                    else _int(position, f"metadata position in segment {file!r}")
                )
                if not 0 <= pos < count:
                    raise BankError(
                        f"metadata position {pos} out of range for segment {file!r} "
                        f"({count} hashes)"
                    )
                if not isinstance(data, dict):
                    raise BankError(
                        f"metadata at position {pos} of segment {file!r} must be a dict, "
                        f"not {type(data).__name__}"
                    )
                try:
                    params.append((sid, pos, encode(data)))
                except (TypeError, ValueError) as exc:
                    raise BankError(
                        f"metadata at position {pos} of segment {file!r} is not "
                        f"JSON-serialisable: {exc}"
                    ) from None
                record = data.get("record")
                if isinstance(record, str):
                    if "\x00" in record:  # as _text: refused on every database alike
                        raise BankError(
                            f"record at position {pos} of segment {file!r} must not contain "
                            "NUL characters"
                        )
                    records.append((sid, pos, record))
            try:
                sql.execute(params)
            except IntegrityError:
                raise BankError(
                    f"metadata for segment {file!r} gives a position twice "
                    f"(within positions {params[0][1]}..{params[-1][1]})"
                ) from None
            # Positions are unique once the metadata went in, so these rows are too.
            record_sql.execute(records)

    def get_segment(self, segment_id: int, *, conn: Connection | None = None) -> Segment:
        with self._read(conn) as c:
            return self._segment_row(c, segment_id)

    def segments(
        self, bank_name: str | None = None, *, conn: Connection | None = None
    ) -> list[Segment]:
        """Segments of one bank, or of all banks, by id (the order they were added)."""
        with self._read(conn) as c:
            query = select(segments).order_by(segments.c.id)
            if bank_name is not None:
                query = query.where(segments.c.bank_id == self._bank_row(c, bank_name).id)
            return [_segment(row) for row in c.execute(query)]

    def remove_segment(self, segment_id: int, *, conn: Connection | None = None) -> str:
        """Delete a segment with its metadata, records and tombstones; returns its file (relative
        to the home), to delete once the transaction has committed."""
        with self._write(conn) as c:
            seg = self._segment_row(c, segment_id)
            c.execute(delete(signal_metadata).where(signal_metadata.c.segment_id == seg.id))
            c.execute(delete(signal_records).where(signal_records.c.segment_id == seg.id))
            c.execute(delete(tombstones).where(tombstones.c.segment_id == seg.id))
            c.execute(delete(segments).where(segments.c.id == seg.id))
            self._touch(c, seg.bank_id)
            return seg.file

    # -- tombstones

    def _tombstone_count(self, conn: Connection, sid: int) -> int:
        query = select(func.count()).select_from(tombstones).where(tombstones.c.segment_id == sid)
        return int(conn.execute(query).scalar_one())

    def add_tombstones(
        self, segment_id: int, positions: Iterable[int], *, conn: Connection | None = None
    ) -> int:
        """Mark hashes of a segment as removed; returns how many were not already. Idempotent."""
        with self._write(conn) as c:
            seg = self._segment_row(c, segment_id)
            before = self._tombstone_count(c, seg.id)
            sql = _BulkInsert(c, _insert_ignore(c, tombstones), ("segment_id", "position"))
            for chunk in _chunks(positions, BATCH_ROWS):
                params: list[tuple[int, int]] = []
                for position in chunk:
                    pos = (
                        position
                        if type(position) is int
                        else _int(position, f"tombstone position in segment {seg.id}")
                    )
                    if not 0 <= pos < seg.count:
                        raise BankError(
                            f"tombstone position {pos} out of range for segment {seg.id} "
                            f"({seg.file!r}, {seg.count} hashes)"
                        )
                    params.append((seg.id, pos))
                sql.execute(params)
            added = self._tombstone_count(c, seg.id) - before
            if added:
                self._touch(c, seg.bank_id)
            return added

    def tombstones(self, segment_id: int, *, conn: Connection | None = None) -> NDArray[np.int64]:
        """Tombstoned positions of a segment, sorted."""
        with self._read(conn) as c:
            seg = self._segment_row(c, segment_id)
            result = c.execute(
                select(tombstones.c.position)
                .where(tombstones.c.segment_id == seg.id)
                .order_by(tombstones.c.position)
            ).scalars()
            return np.fromiter(result, dtype=np.int64)

    # -- metadata

    def metadata(
        self, segment_id: int, positions: Sequence[int], *, conn: Connection | None = None
    ) -> dict[int, dict[str, Any]]:
        """Metadata of the given positions of a segment; positions without any are left out."""
        wanted = sorted({_int(p, "metadata position") for p in positions})
        found: dict[int, dict[str, Any]] = {}
        if not wanted:
            return found
        with self._read(conn) as c:
            sid = _int(segment_id, "segment id")
            for chunk in _chunks(wanted, QUERY_CHUNK):
                rows = c.execute(
                    select(signal_metadata.c.position, signal_metadata.c.data).where(
                        signal_metadata.c.segment_id == sid,
                        signal_metadata.c.position.in_(chunk),
                    )
                )
                for position, data in rows:
                    found[int(position)] = json.loads(data)
        return found

    def record_positions(
        self, bank_name: str, records: Iterable[str], *, conn: Connection | None = None
    ) -> dict[int, list[int]]:
        """Where a bank holds hashes of these exchange records: segment id → sorted positions.

        Records without any hash are left out; tombstoned positions are included.
        """
        wanted = sorted({_text(r, "record") for r in records})
        found: dict[int, list[int]] = {}
        if not wanted:
            return found
        with self._read(conn) as c:
            bank = self._bank_row(c, bank_name)
            seg_ids = select(segments.c.id).where(segments.c.bank_id == bank.id)
            for chunk in _chunks(wanted, QUERY_CHUNK):
                rows = c.execute(
                    select(signal_records.c.segment_id, signal_records.c.position).where(
                        signal_records.c.segment_id.in_(seg_ids),
                        signal_records.c.record.in_(chunk),
                    )
                )
                for segment_id, position in rows:
                    found.setdefault(int(segment_id), []).append(int(position))
        return {sid: sorted(positions) for sid, positions in sorted(found.items())}

    # -- sync state

    def set_sync(
        self,
        bank_name: str,
        exchange: str,
        collab: dict[str, Any],
        checkpoint: dict[str, Any] | None,
        *,
        conn: Connection | None = None,
    ) -> SyncState:
        """Record (replace) the sync state of an exchange-fed bank."""
        exchange = _text(exchange, "exchange")
        if not isinstance(collab, dict):
            raise BankError(f"collab must be a dict, not {type(collab).__name__}")
        if checkpoint is not None and not isinstance(checkpoint, dict):
            raise BankError(f"checkpoint must be a dict or None, not {type(checkpoint).__name__}")
        collab_json = _dumps(collab, f"collab of bank {bank_name!r}")
        checkpoint_json = (
            None if checkpoint is None else _dumps(checkpoint, f"checkpoint of bank {bank_name!r}")
        )
        now = _now()
        values = {
            "exchange": exchange,
            "collab": collab_json,
            "checkpoint": checkpoint_json,
            "updated_at": now,
        }
        with self._write(conn) as c:
            bank = self._bank_row(c, bank_name)
            done = c.execute(
                update(sync_state).where(sync_state.c.bank_id == bank.id).values(**values)
            )
            if done.rowcount == 0:
                c.execute(insert(sync_state).values(bank_id=bank.id, **values))
        return SyncState(
            exchange=exchange,
            collab=json.loads(collab_json),
            checkpoint=None if checkpoint_json is None else json.loads(checkpoint_json),
            updated_at=now,
        )

    def get_sync(self, bank_name: str, *, conn: Connection | None = None) -> SyncState | None:
        """The sync state of a bank, ``None`` if it was never synced."""
        with self._read(conn) as c:
            bank = self._bank_row(c, bank_name)
            row = c.execute(select(sync_state).where(sync_state.c.bank_id == bank.id)).first()
        if row is None:
            return None
        m = row._mapping
        checkpoint = m["checkpoint"]
        return SyncState(
            exchange=str(m["exchange"]),
            collab=json.loads(str(m["collab"])),
            checkpoint=None if checkpoint is None else json.loads(str(checkpoint)),
            updated_at=_aware(m["updated_at"]),
        )


class _BulkInsert:
    """``executemany`` of an INSERT with plain values (ints, strings), in the dialect's own
    paramstyle: Core's per-row parameter handling would double the cost of 10M metadata rows."""

    def __init__(self, conn: Connection, stmt: Insert, keys: tuple[str, ...]) -> None:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(keys))
        self._conn = conn
        self._sql = str(compiled)
        self._keys = keys
        self._order: list[int] | None = None
        if compiled.positional:
            order = [keys.index(k) for k in compiled.positiontup or ()]
            if sorted(order) != list(range(len(keys))):
                raise AssertionError(f"unexpected parameters in {self._sql!r}")
            self._order = order

    def execute(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        params: Sequence[tuple[Any, ...]] | list[dict[str, Any]]
        if self._order is None:
            params = [dict(zip(self._keys, row, strict=True)) for row in rows]
        elif self._order == list(range(len(self._keys))):
            params = rows
        else:
            params = [tuple(row[i] for i in self._order) for row in rows]
        self._conn.exec_driver_sql(self._sql, params)


def _insert_ignore(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()
