"""Garbled text is marked so that a later clean poll repairs it; feeds keep their last warning.

`article.text_suspect`: the title or summary may be garbled by a bad charset (U+FFFD for
invalid bytes, or the feed decoded against its declaration); such articles are classified
again at each poll and repaired when their feed sends the same guid clean. `feed.last_warning`:
the parse warnings of the feed's last fetched body, for operators (`monitor feeds list`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines. A SQL-expression default (sa.false()) would make
    # Alembic rebuild the article table on SQLite, and the rebuild's DROP TABLE fails the
    # foreign keys of every stored article's band rows. '0' is a valid boolean literal for both.
    op.add_column("article", sa.Column("text_suspect", sa.Boolean(), nullable=False, server_default="0"))
    op.add_column("feed", sa.Column("last_warning", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("last_warning")
    with op.batch_alter_table("article") as batch:
        batch.drop_column("text_suspect")
