"""The story search finds a watch's flagged articles of a few days by an index of their own.

A flagged article that copies nothing joins the story of an earlier flagged article of the
same watch published within the story window (monitor.store.writer.SqlDedup._matching_story:
`watch = ? AND flagged AND published_at BETWEEN ? AND ?`). With only `ix_article_flagged`
both engines walked every flagged article of the archive (2 % of it: 20,000 rows at 1M) for
each such article of a poll (bench/archive_bench.py). `watch` is set only on flagged
articles, so a partial index on (watch, published_at) holds just those and answers the
window with one range scan; `watch = ?` implies the index's `watch IS NOT NULL` on both
engines, so the planners may use it.

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-26
"""
import sqlalchemy as sa

from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_article_watch_published",
        "article",
        ["watch", "published_at"],
        sqlite_where=sa.text("watch IS NOT NULL"),
        postgresql_where=sa.text("watch IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_article_watch_published", table_name="article")
