"""Where gardien keeps its state (hash banks, their metadata): one directory, the *home*.

The banks' metadata is kept in SQLite inside the home unless a database URL names another
database (PostgreSQL); the hashes themselves always stay in the home's segment files.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

#: Environment variable naming the home directory when no explicit path is given.
HOME_ENV = "GARDIEN_HOME"
#: Environment variable naming the database of the banks' metadata (a SQLAlchemy URL).
DATABASE_URL_ENV = "GARDIEN_DATABASE_URL"


def gardien_home(explicit: Path | None = None) -> Path:
    """The home directory: ``explicit`` if given, else ``$GARDIEN_HOME``, else the user data dir.

    Nothing is created here; :class:`gardien.hashing.store.BankStore` creates what it needs.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(HOME_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("gardien"))


def gardien_database_url(explicit: str | None = None) -> str | None:
    """The database URL: ``explicit`` if given, else ``$GARDIEN_DATABASE_URL``; ``None`` (also
    for an empty one, so ``""`` overrides the variable) means SQLite inside the home."""
    value = explicit if explicit is not None else os.environ.get(DATABASE_URL_ENV, "")
    return value.strip() or None
