"""PostgreSQL: compress the large columns with lz4 instead of pglz.

Article text (2-4 KB of UTF-8 Arabic per row) passes PostgreSQL's TOAST threshold, so every
insert compresses it; with the default pglz that compression was the server's main cost in
a cold pass (poll_bench, 500 x 40 items: 12.4-13.1 s, with lz4 9.6 s). Only where the server
offers lz4 (PostgreSQL 14+ built with it); elsewhere, and on SQLite, nothing changes. Values
already stored keep their compression until rewritten.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Columns that hold kilobytes per row.
COLUMNS = {
    "article": ("title", "summary", "decision", "features"),
    "delivery": ("payload",),
}


def _server_offers_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    offered = bind.execute(
        sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return bool(offered)


def _set_compression(method: str) -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}')


def upgrade() -> None:
    if _server_offers_lz4():
        _set_compression("lz4")


def downgrade() -> None:
    if _server_offers_lz4():
        _set_compression("default")
