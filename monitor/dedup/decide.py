"""Decisions on pairs and on stories as a whole: near-copy, same story, and whether a story
admits an article (one stated round, one watch, its span)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from monitor.dedup.config import DedupConfig
from monitor.dedup.features import _EMPTY, ArticleFeatures


# -- decisions --------------------------------------------------------------------------------


def estimated_jaccard(a: ArticleFeatures, b: ArticleFeatures) -> float:
    left, right = a.signature_array, b.signature_array
    if len(left) != len(right) or not len(left) or left.min() == _EMPTY or right.min() == _EMPTY:
        return 0.0  # an empty text resembles nothing
    return float(np.count_nonzero(left == right)) / len(left)


def is_near_duplicate(a: ArticleFeatures, b: ArticleFeatures, config: DedupConfig) -> bool:
    """Same dispatch: same content fingerprint, or estimated shingle Jaccard over the threshold.

    Agencies reuse one template for every round ("... the fifth round ..." / "... the sixth
    round ..."), so two texts that say different rounds or watches are never copies,
    however alike."""
    if _known_and_different(a.watch, b.watch) or _known_and_different(a.round, b.round):
        return False
    if a.fingerprint == b.fingerprint:
        return True
    return estimated_jaccard(a, b) >= config.near_duplicate_threshold


def _known_and_different(left: object, right: object) -> bool:
    return left is not None and right is not None and left != right


def keyword_similarity(a: ArticleFeatures, b: ArticleFeatures) -> float:
    """Jaccard of the two keyword sets (the `max_keywords` most frequent content words)."""
    if not a.keywords or not b.keywords:
        return 0.0
    shared = len(a.keywords & b.keywords)
    return shared / (len(a.keywords) + len(b.keywords) - shared)


def story_score(a: ArticleFeatures, b: ArticleFeatures, config: DedupConfig) -> float | None:
    """Similarity of two articles as write-ups of one happening, or None when they cannot be
    (different watch, stated round or kind of happening, or too far apart in time)."""
    if _known_and_different(a.watch, b.watch) or _known_and_different(a.round, b.round):
        return None
    if _known_and_different(a.event, b.event) or _different_working_groups(a, b):
        return None
    if abs(a.published - b.published) > config.story_window:
        return None
    if _known_and_different(a.language, b.language):
        return _cross_language_score(a, b)
    return keyword_similarity(a, b)


def _different_working_groups(a: ArticleFeatures, b: ArticleFeatures) -> bool:
    """One round's working groups meet on neighbouring days and their write-ups name the same
    round and framework: only their subjects, as topic tags, tell them apart."""
    working_group = "working_group" in (a.event, b.event)
    return working_group and bool(a.subject) and bool(b.subject) and not (a.subject & b.subject)


def _cross_language_score(a: ArticleFeatures, b: ArticleFeatures) -> float | None:
    """An English statement and an Arabic report of one session share no words, so the
    keyword score cannot join them; what they share is the watch, the stated round and the
    kind of happening. Both must state the round, and at least one must name the happening
    (a write-up that names none can only be of the session itself), so that a preview or a
    working group never joins across languages on the round alone. The score is then the
    share of topic tags they have in common, floored so that a stated match always counts."""
    if a.watch is None or b.watch is None or a.round is None or b.round is None:
        return None
    kinds = {a.event, b.event}
    if kinds != {"session", None} and (None in kinds or len(kinds) != 1):
        return None
    if kinds == {"working_group"} and not (a.subject & b.subject):
        return None  # one round's working groups meet the same week: the subject must match
    union = a.subject | b.subject
    shared = len(a.subject & b.subject) / len(union) if union else 0.0
    return max(shared, CROSS_LANGUAGE_FLOOR)


# The score of a cross-language pair that passes the checks above: above every threshold
# of DedupConfig, since the watch, round and happening already decide.
CROSS_LANGUAGE_FLOOR = 1.0 - 1e-9


def same_story(a: ArticleFeatures, b: ArticleFeatures, config: DedupConfig) -> bool:
    score = story_score(a, b, config)
    if score is None:
        return False
    known = a.watch is not None and b.watch is not None
    return score >= (config.story_threshold if known else config.story_threshold_unknown_watch)


# -- stories as a whole -------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryExtent:
    """What a story has said so far, as far as membership goes.

    Deciding membership pair by pair made it transitive: a round-5 article, then a write-up
    stating no round (similar to it), then a round-6 announcement (similar to the write-up)
    became one story, and once the round-5 story had been sent the round-6 news reached no
    digest. Membership is therefore checked against the story as a whole: its one watch and
    one stated round, the span of its independent write-ups, and whether it was already
    delivered. The store keeps the same things in the story row."""

    round: int | None = None
    first_published: datetime | None = None  # None: no span yet (no member, or copies only)
    last_published: datetime | None = None
    delivered: bool = False  # a digest or an alert carried it
    watch: str | None = None  # the watch of its flagged members
    event: str | None = None  # the kind of happening its members name (dedup.events)

    def with_member(self, features: ArticleFeatures, *, copy: bool = False) -> StoryExtent:
        """The extent once `features` has joined. A copy repeats its original's dispatch, so
        its date (a late re-publication) does not stretch the span; its round still counts."""
        round_ = self.round if self.round is not None else features.round
        watch = self.watch if self.watch is not None else features.watch
        # A copy's headline may be rewritten ("new headline" syndication): its kind is its
        # original's, whatever its own headline suggests.
        event = self.event if self.event is not None or copy else features.event
        if copy or (self.first_published is not None and self.last_published is not None
                    and self.first_published <= features.published <= self.last_published):
            if (round_, watch, event) == (self.round, self.watch, self.event):
                return self
            return replace(self, round=round_, watch=watch, event=event)
        first = features.published if self.first_published is None else min(self.first_published, features.published)
        last = features.published if self.last_published is None else max(self.last_published, features.published)
        return replace(self, round=round_, watch=watch, event=event, first_published=first, last_published=last)


def story_admits(story: StoryExtent, features: ArticleFeatures, config: DedupConfig, *, copy: bool = False) -> bool:
    """Whether an article may join a story, given that it resembles one of its members
    (`same_story`, or `is_near_duplicate` for a `copy`).

    * a story has at most one stated round, one watch and one kind of happening (a preview,
      the session, a working group...: dedup.events): an article stating another never
      joins, so an article stating none (or not flagged) can join but never bridge two
      (a copy's kind is its original's: syndication rewrites headlines);
    * an independent write-up must fall within `story_window` of every member's date, so a
      story never spans more than the window however its members chain;
    * a delivered story takes only what it already said: a later write-up of its round, or
      of no round, is the same news and joins silently (never sent twice); one stating a
      round the story never stated is news and starts a story of its own (never missed),
      even if it reuses a member's wording (an agency template);
    * otherwise copies of a member join whatever their date: they are the same dispatch."""
    if _known_and_different(features.round, story.round) or _known_and_different(features.watch, story.watch):
        return False
    if not copy and _known_and_different(features.event, story.event):
        return False
    if story.delivered and features.round is not None and story.round is None:
        return False
    if copy:
        return True
    if story.first_published is not None and story.last_published is not None:
        window = config.story_window
        if features.published > story.first_published + window or features.published < story.last_published - window:
            return False
    return True
