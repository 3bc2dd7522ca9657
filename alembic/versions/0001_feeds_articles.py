"""Feeds with their HTTP cache state and health, articles with decisions, stories and LSH bands.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

from monitor.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("configured_url", sa.Text(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("language", sa.String(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("last_body_hash", sa.String(), nullable=True),
        sa.Column("last_status", sa.String(), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_polled_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("next_poll_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("article_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_feed_next_poll_at", "feed", ["next_poll_at"])
    op.create_table(
        "story",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=64), nullable=False, unique=True),
        sa.Column("watch", sa.String(), nullable=True),
        sa.Column("round", sa.Integer(), nullable=True),
        sa.Column("headline_article_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("flagged_at", UTCDateTime(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
    )
    op.create_index("ix_story_watch", "story", ["watch"])
    op.create_index("ix_story_flagged_at", "story", ["flagged_at"])
    op.create_table(
        "article",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("feed_id", sa.String(length=64), sa.ForeignKey("feed.id"), nullable=False),
        sa.Column("guid", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True, unique=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("author", sa.String(), nullable=True),
        sa.Column("language", sa.String(), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("published_is_fallback", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("watch", sa.String(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("rules_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=True),
        sa.Column("duplicate_of", sa.Integer(), sa.ForeignKey("article.id"), nullable=True),
        sa.Column("story_id", sa.Integer(), sa.ForeignKey("story.id"), nullable=True),
        sa.UniqueConstraint("feed_id", "guid", name="uq_article_feed_guid"),
    )
    op.create_index("ix_article_feed_id", "article", ["feed_id"])
    op.create_index("ix_article_fingerprint", "article", ["fingerprint"])
    op.create_index("ix_article_first_seen_at", "article", ["first_seen_at"])
    op.create_index("ix_article_flagged", "article", ["flagged"])
    op.create_index("ix_article_story_id", "article", ["story_id"])
    op.create_index("ix_article_published", "article", ["published_at"])
    op.create_table(
        "article_band",
        sa.Column("article_id", sa.Integer(), sa.ForeignKey("article.id"), primary_key=True),
        sa.Column("band", sa.SmallInteger(), primary_key=True),
        sa.Column("hash", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_article_band_hash", "article_band", ["hash"])


def downgrade() -> None:
    op.drop_table("article_band")
    op.drop_table("article")
    op.drop_table("story")
    op.drop_table("feed")
