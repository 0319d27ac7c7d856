"""The databases of the store's tests: a PostgreSQL server for the session (the binaries of the
``pgserver`` wheel) with an empty database per test, :class:`Backend` to run a test on SQLite and
on PostgreSQL, and the store's Alembic migrations. Without pgserver, or where it cannot start, the
tests that need PostgreSQL skip.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from gardien.hashing import store as store_module
from gardien.hashing.store import DB_FILE, BankStore

#: Durability is no concern of a throwaway server (with it, each new database costs a flush).
_FAST: dict[str, str] = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PgServer:
    """A running server and a connection to its ``postgres`` database, for making databases."""

    def __init__(self, server: Any, admin: Any, directory: Path) -> None:
        self._server = server
        self._admin = admin
        self._directory = directory
        self._names = (f"gardien_test_{i}" for i in itertools.count(1))

    def url(self, database: str, *, password: str = "") -> str:
        """The SQLAlchemy URL (psycopg 3) of a database; the server trusts any password."""
        url = make_url(self._server.get_uri(database))
        url = url.set(drivername="postgresql+psycopg", password=password)
        return url.render_as_string(hide_password=False)

    def create_database(self) -> str:
        """A new, empty database; returns its name."""
        name = next(self._names)
        self._admin.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing what a test left connected to it."""
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        self._admin.close()
        self._server.cleanup()
        shutil.rmtree(self._directory, ignore_errors=True)


def start() -> PgServer:
    """Start a server in a new temporary directory, or skip saying why it cannot."""
    try:
        import psycopg
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need psycopg (pip install -e '.[dev]'): {exc}")
    directory = Path(tempfile.mkdtemp(prefix="gardien-pg-"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR
            import pgserver

            server = pgserver.get_server(directory / "data", cleanup_mode="delete")
    except ImportError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.skip(f"PostgreSQL tests need pgserver (pip install -e '.[dev]'): {exc}")
    except Exception as exc:  # no usable binaries, no permission, ...: say so, never fail all
        shutil.rmtree(directory, ignore_errors=True)
        pytest.skip(f"pgserver could not start PostgreSQL: {type(exc).__name__}: {exc}")
    admin = psycopg.connect(server.get_uri(), autocommit=True)
    for name, value in _FAST.items():
        admin.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    admin.execute("SELECT pg_reload_conf()")
    return PgServer(server, admin, directory)


@dataclass(frozen=True)
class Backend:
    """Where a test's bank store keeps its metadata: SQLite in the home, or a PostgreSQL database
    (``url``); the segment files are in the home either way."""

    name: str
    home: Path
    url: str | None

    def open(self, **options: Any) -> BankStore:
        return BankStore(self.home, url=self.url, **options)

    @property
    def database_url(self) -> str:
        """The database's own URL, for what opens it directly (Alembic, inspection)."""
        return self.url or f"sqlite:///{self.home / DB_FILE}"


def alembic_config(url: str) -> Config:
    """Alembic's view of the store's migrations, run on the database at ``url``."""
    config = Config()
    migrations = Path(store_module.__file__).parent / "migrations"
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head() -> str:
    """The newest revision of the store's schema."""
    found = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert found is not None
    return found
