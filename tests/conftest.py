from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gardien.home import DATABASE_URL_ENV
from gardien.text import PromptGuard
from tests import pg

ROOT = Path(__file__).resolve().parent.parent
LABELLED = Path(__file__).resolve().parent / "data" / "labelled"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def guard() -> PromptGuard:
    return PromptGuard()


@pytest.fixture(scope="session")
def strict_guard() -> PromptGuard:
    return PromptGuard("strict")


@pytest.fixture(autouse=True)
def _no_database_url_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their database: one named in the shell must never receive their writes."""
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PgServer]:
    """One PostgreSQL server for the session (skips where pgserver cannot start one)."""
    server = pg.start()
    yield server
    server.stop()


@pytest.fixture
def pg_database(pg_server: pg.PgServer) -> Iterator[str]:
    """A new, empty database of its own, dropped after the test."""
    name = pg_server.create_database()
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def pg_url(pg_server: pg.PgServer, pg_database: str) -> str:
    return pg_server.url(pg_database)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> pg.Backend:
    """Each database the bank store runs on, in turn."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return pg.Backend(request.param, tmp_path / "home", url)
