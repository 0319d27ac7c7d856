"""Where gardien keeps its state (hash banks, their metadata): one directory, the *home*."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

#: Environment variable naming the home directory when no explicit path is given.
HOME_ENV = "GARDIEN_HOME"


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
