"""Archive search: the full-text index over each article's search words (monitor.search).

SQLite: `article_search`, a contentless FTS5 table (rowid = article.id). PostgreSQL:
`article_search(article_id, document tsvector)` with a GIN index. Existing articles are
indexed here, 1,000 at a time in id order, so the memory used does not grow with the
archive (monitor.store.search.fill_index); the writer indexes new articles from then on.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""
from alembic import op
from monitor.store.search import (
    create_index,
    create_postgres_gin,
    drop_index,
    fill_index,
)

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    create_index(connection)
    fill_index(connection)
    create_postgres_gin(connection)


def downgrade() -> None:
    drop_index(op.get_bind())
