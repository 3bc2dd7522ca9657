"""Sources beyond RSS: where each article came from, its full text, and pages to retry.

`article.source_type` ("rss", "sitemap", "html"), `article.full_text` (the summary holds the
text extracted from the article's own page) and `article.page_error` (why that page gave no
text). `page_attempt`: article pages that failed for a passing reason, so the entry is tried
again at the next poll a bounded number of times before it is stored without its page.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

from monitor.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with literal server defaults (see 0007: no table rebuild on SQLite).
    op.add_column("article", sa.Column("source_type", sa.String(16), nullable=False, server_default="rss"))
    op.add_column("article", sa.Column("full_text", sa.Boolean(), nullable=False, server_default="0"))
    op.add_column("article", sa.Column("page_error", sa.Text(), nullable=True))
    op.create_table(
        "page_attempt",
        sa.Column("feed_id", sa.String(64), sa.ForeignKey("feed.id"), primary_key=True),
        sa.Column("guid", sa.Text(), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("page_attempt")
    with op.batch_alter_table("article") as batch:
        batch.drop_column("page_error")
        batch.drop_column("full_text")
        batch.drop_column("source_type")
