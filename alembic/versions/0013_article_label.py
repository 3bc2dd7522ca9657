"""The analyst's verdicts on stored articles: `monitor label` writes them, `monitor rules test`
scores the rules against them (#10, part 5), so rules are tuned on the user's own articles.

`article_label`: one row per labelled article (its id is the key: labelling again replaces
the verdict). `verdict` is "relevant" or "irrelevant"; `watch` the partner's watch id and
`round` the dialogue round when the analyst gave one (both null for "irrelevant").

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""
import sqlalchemy as sa

from alembic import op
from monitor.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_label",
        sa.Column("article_id", sa.Integer(), sa.ForeignKey("article.id"), primary_key=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("watch", sa.String(64), nullable=True),
        sa.Column("round", sa.Integer(), nullable=True),
        sa.Column("labelled_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("article_label")
