"""Stories keep their publication span, and delivered stories are found by story id.

Story membership is checked against the story as a whole (monitor.dedup.story_admits): its
one stated round (`story.round`), the span of its independent write-ups
(`first_published_at` / `last_published_at`) and whether a digest or an alert carried it
(`digest_item.story_id`, `alert_sent.story_id`, indexed here because the writer asks this
for the stories a new article resembles). Existing stories get their span and round from
their articles.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from monitor.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("story") as batch:
        batch.add_column(sa.Column("first_published_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_published_at", UTCDateTime(), nullable=True))
    op.create_index("ix_digest_item_story_id", "digest_item", ["story_id"])
    op.create_index("ix_alert_sent_story_id", "alert_sent", ["story_id"])
    # Copies do not stretch a story's span (a late re-publication is the same dispatch).
    op.execute(
        """
        UPDATE story SET
            first_published_at = (SELECT MIN(a.published_at) FROM article a
                                  WHERE a.story_id = story.id AND a.duplicate_of IS NULL),
            last_published_at = (SELECT MAX(a.published_at) FROM article a
                                 WHERE a.story_id = story.id AND a.duplicate_of IS NULL),
            round = COALESCE(round, (SELECT MIN(a.round) FROM article a
                                     WHERE a.story_id = story.id AND a.round IS NOT NULL))
        """
    )


def downgrade() -> None:
    op.drop_index("ix_alert_sent_story_id", table_name="alert_sent")
    op.drop_index("ix_digest_item_story_id", table_name="digest_item")
    with op.batch_alter_table("story") as batch:
        batch.drop_column("last_published_at")
        batch.drop_column("first_published_at")
