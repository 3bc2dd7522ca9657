"""What a parse worker makes of one entry: the entry, its relevance decision and its dedup
features, serialised for the writer.

Its own module, outside monitor.store, because the parse workers build it: importing the
store package loads SQLAlchemy, SQLModel and Alembic (~45 MB and ~1.5 s per process) into
processes that never touch the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from monitor.dedup import ArticleFeatures
from monitor.relevance import Decision
from monitor.sources.parse import ParsedEntry


@dataclass(frozen=True)
class Candidate:
    """A parsed entry not yet stored for its feed, with what classify and dedup made of it."""

    entry: ParsedEntry
    decision: Decision
    features: ArticleFeatures
    # Serialised here, in the worker process, so the single database writer does not have to.
    decision_json: str
    features_blob: bytes
    source_type: str = "rss"  # "rss" | "sitemap" | "html"
    full_text: bool = False  # entry.summary is the text extracted from the article's page
    page_error: str | None = None  # why the article's page, when fetched, gave no text


def decision_json(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
