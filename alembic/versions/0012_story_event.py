"""A story's kind of happening: a preview, an arrival, the session, a working group...

`story.event` holds the one kind of happening its members name (monitor.dedup.events), as
`story.round` holds its one stated round: write-ups of different happenings of one round
are different stories (dedup.story_admits), and a write-up that names none may join but
never bridge two. Stories stored before this have none: they admit any kind, as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("story", sa.Column("event", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("story") as batch:
        batch.drop_column("event")
