"""When each digest definition was first scheduled, so the first start sends no catch-up.

Existing installations count from their first built digest, so a daemon upgraded while a
slot was missed still catches it up.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from monitor.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_schedule",
        sa.Column("digest_id", sa.String(length=64), primary_key=True),
        sa.Column("first_scheduled_at", UTCDateTime(), nullable=False),
    )
    op.execute(
        "INSERT INTO digest_schedule (digest_id, first_scheduled_at) "
        "SELECT digest_id, MIN(created_at) FROM digest_run GROUP BY digest_id"
    )


def downgrade() -> None:
    op.drop_table("digest_schedule")
