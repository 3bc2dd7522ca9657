"""Daemons and their heartbeat: `monitor status` says whether a daemon is running against this
database, since when and on which host (#11).

`daemon`: one row per running `monitor run`, keyed by "host:pid" like the feed and delivery
leases, its heartbeat refreshed every 30 s and the row deleted at a clean stop.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""
import sqlalchemy as sa

from alembic import op
from monitor.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daemon",
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False, server_default=""),
        sa.Column("metrics_listen", sa.String(255), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("daemon")
