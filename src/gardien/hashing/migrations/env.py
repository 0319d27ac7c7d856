"""Alembic environment for the bank store.

:class:`gardien.hashing.store.BankStore` runs ``upgrade head`` itself, handing its open connection
(already inside a transaction) through ``config.attributes["connection"]``: the whole upgrade is
then one transaction, committed or rolled back by the store. Run by hand (``alembic -x`` or a
:class:`alembic.config.Config` with ``sqlalchemy.url`` set), it opens its own engine; offline
(``--sql``) it prints the DDL, e.g. to review it before running it on PostgreSQL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from gardien.hashing.store import SCHEMA as target_metadata

config = context.config


def _configure(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # The store begins SQLite transactions itself ("BEGIN"), so SQLite DDL is transactional.
        transactional_ddl=True if sqlite else None,
        render_as_batch=sqlite,
    )


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline migrations need sqlalchemy.url in the alembic config")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _configure(given)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url in the alembic config")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
