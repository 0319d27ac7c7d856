"""Initial schema: banks, segments, per-hash metadata, tombstones, exchange sync state.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Bank and segment ids are never reused (SQLite AUTOINCREMENT), so a stale (segment id, position)
held by a cache can never name another segment's hash. Constraint names are explicit so that
later revisions can alter them (SQLite batch mode needs names).

Written by hand and frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "banks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_banks"),
        sa.UniqueConstraint("name", name="uq_banks_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segments"),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["banks.id"], name="fk_segments_bank_id_banks", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("file", name="uq_segments_file"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_segments_bank_id", "segments", ["bank_id"])
    op.create_table(
        "signal_metadata",
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "position", name="pk_signal_metadata"),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name="fk_signal_metadata_segment_id_segments",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "tombstones",
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "position", name="pk_tombstones"),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name="fk_tombstones_segment_id_segments",
            ondelete="CASCADE",
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "sync_state",
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("collab", sa.Text(), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bank_id", name="pk_sync_state"),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["banks.id"], name="fk_sync_state_bank_id_banks", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    op.drop_table("tombstones")
    op.drop_table("signal_metadata")
    op.drop_index("ix_segments_bank_id", table_name="segments")
    op.drop_table("segments")
    op.drop_table("banks")
