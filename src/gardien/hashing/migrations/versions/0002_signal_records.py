"""Signal records: the exchange record each synced hash came from, indexed.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

Some exchange deletions name only a record, with no hash (NCMEC's deleted entries): to apply them,
the store finds a bank's hashes by record. The record is already in each synced hash's metadata
(``"record"``); this table indexes it, one row per hash whose metadata has a string record. Rows
of databases synced before this revision are filled in from their metadata.

Written by hand and frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Filling in the records from the metadata, in the database itself where it can read JSON.
#: Not on PostgreSQL: its json and jsonb refuse a whole document holding an escaped NUL
#: ("\u0000", which the metadata may hold anywhere), so it takes the batched path below.
_BACKFILL: dict[str, str] = {
    "sqlite": (
        "INSERT INTO signal_records (segment_id, position, record) "
        "SELECT segment_id, position, json_extract(data, '$.record') FROM signal_metadata "
        "WHERE json_type(data, '$.record') = 'text'"
    ),
}
_BATCH_ROWS = 10_000


def upgrade() -> None:
    op.create_table(
        "signal_records",
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "position", name="pk_signal_records"),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name="fk_signal_records_segment_id_segments",
            ondelete="CASCADE",
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_signal_records_record", "signal_records", ["record"])
    sql = _BACKFILL.get(op.get_context().dialect.name)
    if sql is not None:
        op.execute(sa.text(sql))
    else:
        _backfill_rows(op.get_bind())


def _backfill_rows(bind: sa.engine.Connection) -> None:
    """The backfill for other databases: metadata read and decoded here, a batch at a time."""
    metadata = sa.table(
        "signal_metadata", sa.column("segment_id"), sa.column("position"), sa.column("data")
    )
    records = sa.table(
        "signal_records", sa.column("segment_id"), sa.column("position"), sa.column("record")
    )
    segment_ids = bind.execute(sa.select(sa.table("segments", sa.column("id")).c.id)).scalars()
    for sid in list(segment_ids):
        last = -1
        while True:
            rows = bind.execute(
                sa.select(metadata.c.position, metadata.c.data)
                .where(metadata.c.segment_id == sid, metadata.c.position > last)
                .order_by(metadata.c.position)
                .limit(_BATCH_ROWS)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            found: list[dict[str, object]] = []
            for position, data in rows:
                record = json.loads(data).get("record")
                # Text columns of PostgreSQL cannot hold NUL; the store refuses such records.
                if isinstance(record, str) and "\x00" not in record:
                    found.append({"segment_id": sid, "position": position, "record": record})
            if found:
                bind.execute(sa.insert(records), found)


def downgrade() -> None:
    op.drop_index("ix_signal_records_record", table_name="signal_records")
    op.drop_table("signal_records")
