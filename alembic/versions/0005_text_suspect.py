"""Garbled text is marked so that a later clean poll repairs it; feeds keep their last warning.

`article.text_suspect`: the title or summary may be garbled by a bad charset (U+FFFD for
invalid bytes, or the feed decoded against its declaration); such articles are classified
again at each poll and repaired when their feed sends the same guid clean. `feed.last_warning`:
the parse warnings of the feed's last fetched body, for operators (`monitor feeds list`).

Revision ID: 0005
Revises: 0007
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("article") as batch:
        batch.add_column(sa.Column("text_suspect", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("last_warning", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("last_warning")
    with op.batch_alter_table("article") as batch:
        batch.drop_column("text_suspect")
