"""What crosses from a poll into the store: a poll's result and each candidate article,
and what the store reports back. They live here, with the store that consumes them, so
that `poll` depends on `store` and never the other way round."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.candidate import Candidate, decision_json
from monitor.dedup import DedupConfig
from monitor.sources.fetch import FetchOutcome
from monitor.store.feeds import DueFeed

__all__ = ["Candidate", "Incoming", "InsertOutcome", "PollResult", "StoredPoll", "decision_json"]


@dataclass(frozen=True)
class PollResult:
    """Everything the store needs to commit one feed's poll in one transaction."""

    feed: DueFeed
    outcome: FetchOutcome
    candidates: tuple[Candidate, ...]
    error: str | None
    fetched_at: datetime
    next_poll_at: datetime
    rules_fingerprint: str
    dedup_config: DedupConfig
    warning: str | None = None  # the parse warnings, stored as feed.last_warning
    page_failures: tuple[tuple[str, str], ...] = ()  # (guid, error): article pages to try again


@dataclass(frozen=True)
class InsertOutcome:
    stored: bool  # False: the entry was already stored (same feed+guid or same canonical URL)
    duplicate_of: int | None = None
    flagged: bool = False


@dataclass
class StoredPoll:
    new: int = 0
    already_stored: int = 0
    near_duplicates: int = 0
    flagged: int = 0
    lease_lost: bool = False  # another process had taken the feed over: nothing was written

    def add(self, outcome: InsertOutcome) -> None:
        if not outcome.stored:
            self.already_stored += 1
            return
        self.new += 1
        self.near_duplicates += outcome.duplicate_of is not None
        self.flagged += outcome.flagged


@dataclass(frozen=True)
class Incoming:
    """A new entry of a feed's poll, on its way into the database."""

    feed_id: str
    candidate: Candidate
    seen_at: datetime
