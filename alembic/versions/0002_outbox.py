"""Digests, alerts and the delivery outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

from monitor.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_run",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("digest_id", sa.String(length=64), nullable=False),
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("story_count", sa.Integer(), nullable=False),
        sa.UniqueConstraint("digest_id", "slot", name="uq_digest_run_slot"),
    )
    op.create_index("ix_digest_run_digest_id", "digest_run", ["digest_id"])
    op.create_table(
        "digest_item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.String(length=64), sa.ForeignKey("digest_run.id"), nullable=False),
        sa.Column("digest_id", sa.String(length=64), nullable=False),
        sa.Column("story_id", sa.Integer(), sa.ForeignKey("story.id"), nullable=False),
        sa.UniqueConstraint("digest_id", "story_id", name="uq_digest_item_story"),
    )
    op.create_index("ix_digest_item_run_id", "digest_item", ["run_id"])
    op.create_table(
        "alert_sent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("story_id", sa.Integer(), sa.ForeignKey("story.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("alert_id", "story_id", name="uq_alert_story"),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("story_id", sa.Integer(), sa.ForeignKey("story.id"), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("give_up_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_delivery_status", "delivery", ["status"])
    op.create_index("ix_delivery_next_attempt_at", "delivery", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("delivery")
    op.drop_table("alert_sent")
    op.drop_table("digest_item")
    op.drop_table("digest_run")
