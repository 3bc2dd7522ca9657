"""The database: engine set-up, migrations, and every read and write the daemon makes.

The database is the source of truth. Each write here is idempotent (a unique key decides
whether a row exists) and each feed's poll is committed in one transaction, so a crash leaves
the database as it was before or after that feed, never in between.

    engine    engines, migrations, sessions
    records   what a poll hands to the store (PollResult; each Candidate is monitor.candidate's)
              and what it gets back

Lease owners ("host:pid") are monitor.process's, re-exported here; neither it nor
monitor.candidate imports this package, so the parse workers never load SQLAlchemy.
    feeds     the feed table: sync with the config, claims, health
    articles  recording polls, reclassifying
    writer    the batch writer: exact, near-duplicate and story decisions
    stories   story rows as articles change: flagged, storyless articles given one
    repair    garbled articles repaired from a clean poll
    pages     article pages: stored already, or failed and to be tried again
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from monitor.models import utcnow
from monitor.store.articles import ArticleStore
from monitor.store.engine import (
    Database,
    alembic_config,
    current_revision,
    make_engine,
    migrations_dir,
    normalise_url,
    upgrade,
)
from monitor.store.feeds import DueFeed, FeedConfigLike, FeedHealth, FeedStore
from monitor.store.pages import PageStore
from monitor.process import HOST, held_by_dead_process, pid_alive, this_process
from monitor.store.records import Candidate, Incoming, InsertOutcome, PollResult, StoredPoll, decision_json


class Store(FeedStore, ArticleStore, PageStore):
    """All database access: the feed table, the articles and their pages, over one engine."""


__all__ = [
    "HOST",
    "Candidate",
    "Database",
    "DueFeed",
    "FeedConfigLike",
    "FeedHealth",
    "Incoming",
    "InsertOutcome",
    "IntegrityError",
    "PollResult",
    "Store",
    "StoredPoll",
    "alembic_config",
    "current_revision",
    "decision_json",
    "held_by_dead_process",
    "make_engine",
    "migrations_dir",
    "normalise_url",
    "pid_alive",
    "this_process",
    "upgrade",
    "utcnow",
]
