"""The search index catches up after a polling pass instead of inside its writes.

`article.search_pending`: stored, not yet in the search index. The writer sets it; the
indexer (monitor.store.search.catch_up) indexes such articles in batches between polling
passes and before a search, so the full-text index costs the polling pass nothing (inside
the pass's transactions it tripled the writer's time). A partial index finds them without
scanning the archive. Existing articles were indexed by 0009: they are not pending.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("article", sa.Column("search_pending", sa.Boolean(), nullable=False, server_default="0"))
    op.create_index(
        "ix_article_search_pending",
        "article",
        ["id"],
        sqlite_where=sa.text("search_pending"),
        postgresql_where=sa.text("search_pending"),
    )


def downgrade() -> None:
    op.drop_index("ix_article_search_pending", table_name="article")
    with op.batch_alter_table("article") as batch:
        batch.drop_column("search_pending")
