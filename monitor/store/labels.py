"""The analyst's verdicts on stored articles (`monitor label`), and reading stored articles in
id order for reviewing rules against them (`monitor rules diff`, `monitor rules test`).

A label is one row per article, keyed by the article's id: labelling again replaces the
verdict (an upsert, so running the same `monitor label` twice, or from two shells at once,
leaves one row). The checks that need no database (a `--round` on an irrelevant article, a
watch the config does not define) come first, so a typo costs no connection.

Reading is keyset pagination (`id > last ORDER BY id LIMIT n`), one short transaction per
batch: memory holds one batch whatever the archive's size, no transaction stays open while
the rules run (the daemon keeps writing meanwhile), and, unlike OFFSET, each batch costs
the same at the end of a million rows as at the start.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from monitor.models import Article, ArticleLabel

Verdict = Literal["relevant", "irrelevant"]
VERDICTS: tuple[str, ...] = ("relevant", "irrelevant")
BATCH_ROWS = 500  # articles held (and classified) at once


class LabelError(ValueError):
    """A `monitor label` that cannot be stored, said in one line naming the option and the fix."""


@dataclass(frozen=True, slots=True)
class Label:
    article_id: int
    verdict: str
    watch: str | None
    round: int | None
    labelled_at: datetime
    note: str | None = None


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """What reviewing rules needs of a stored article: its text, and the decision stored
    with the rules it was made under (never the dedup features blob)."""

    id: int
    title: str
    summary: str
    language: str | None
    first_seen_at: datetime
    flagged: bool
    watch: str | None
    round: int | None
    decision: str
    rules_fingerprint: str


_ARTICLE_COLUMNS = (
    Article.id, Article.title, Article.summary, Article.language, Article.first_seen_at, Article.flagged,
    Article.watch, Article.round, Article.decision, Article.rules_fingerprint,
)
_LABEL_COLUMNS = (
    ArticleLabel.verdict, ArticleLabel.watch.label("label_watch"), ArticleLabel.round.label("label_round"),  # type: ignore[attr-defined]
    ArticleLabel.labelled_at, ArticleLabel.note,
)


# -- labelling ------------------------------------------------------------------------------------


def check_label(verdict: str, watch: str | None, round: int | None, known_watches: Sequence[str]) -> None:
    """The checks that need no database; LabelError names the option."""
    if verdict not in VERDICTS:
        raise LabelError(f"verdict: {verdict!r} is neither relevant nor irrelevant")
    if verdict == "irrelevant" and round is not None:
        raise LabelError("--round: an irrelevant article has no round (leave --round out, or label it relevant)")
    if verdict == "irrelevant" and watch is not None:
        raise LabelError("--watch: an irrelevant article concerns no watch (leave --watch out, or label it relevant)")
    if watch is not None and watch not in known_watches:
        known = ", ".join(known_watches) or "none configured"
        raise LabelError(f"--watch: unknown watch {watch!r} (known: {known})")
    if round is not None and not 1 <= round <= 1000:
        raise LabelError(f"--round: {round} is not a round number (1, 2, 3 …)")


def set_label(
    engine: Engine,
    article_id: int,
    verdict: str,
    *,
    watch: str | None,
    round: int | None,
    known_watches: Sequence[str],
    now: datetime,
    note: str | None = None,
) -> tuple[Label, Label | None]:
    """Store the verdict on one article, replacing any earlier one; (the label stored, the
    label it replaced or None). "relevant" without a watch takes the watch the article is
    stored as flagged for; an article flagged for none needs --watch."""
    check_label(verdict, watch, round, known_watches)
    with engine.begin() as connection:
        stored = connection.execute(select(Article.id, Article.watch).where(Article.id == article_id)).first()
        if stored is None:
            raise LabelError(f"article {article_id} is not stored (find ids with `monitor search` or `monitor export`)")
        if verdict == "relevant" and watch is None:
            if stored.watch is None:
                known = ", ".join(known_watches) or "none configured"
                raise LabelError(
                    f"--watch: article {article_id} is not flagged for any watch: say which it concerns (known: {known})"
                )
            watch = stored.watch
        previous = connection.execute(select(ArticleLabel).where(ArticleLabel.article_id == article_id)).first()
        label = Label(article_id, verdict, watch, round, now, note)
        values = {
            "article_id": article_id, "verdict": verdict, "watch": watch, "round": round, "labelled_at": now,
            "note": note,
        }
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = insert(ArticleLabel).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[ArticleLabel.article_id],
            set_={key: statement.excluded[key] for key in values if key != "article_id"},
        )
        connection.execute(statement)
    return label, None if previous is None else _label(previous._mapping, article_id)


def _label(row: Any, article_id: int) -> Label:
    return Label(article_id, row["verdict"], row["watch"], row["round"], row["labelled_at"], row["note"])


def count_labels(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ArticleLabel)).scalar_one())


# -- reading in id order ------------------------------------------------------------------------------


def article_batches(engine: Engine, since: datetime | None = None, batch: int = BATCH_ROWS) -> Iterator[list[StoredArticle]]:
    """The stored articles first seen at or after `since` (all without it), `batch` at a time
    in id order. The first id is found on the first-seen index, so `--since 1d` on a large
    archive does not walk the old rows to reach today's."""
    last = 0
    if since is not None:
        with engine.connect() as connection:
            first = connection.execute(select(func.min(Article.id)).where(Article.first_seen_at >= since)).scalar()  # type: ignore[operator]
        if first is None:
            return
        last = first - 1
    while True:
        query = select(*_ARTICLE_COLUMNS).where(Article.id > last).order_by(Article.id).limit(batch)  # type: ignore[operator, call-overload]
        if since is not None:
            query = query.where(Article.first_seen_at >= since)  # type: ignore[operator]
        with engine.connect() as connection:
            rows = [_article(row._mapping) for row in connection.execute(query)]
        if not rows:
            return
        yield rows
        last = rows[-1].id


def labelled_batches(engine: Engine, batch: int = BATCH_ROWS) -> Iterator[list[tuple[StoredArticle, Label]]]:
    """Every labelled article with its label, `batch` at a time in id order."""
    last = 0
    while True:
        query = (
            select(*_ARTICLE_COLUMNS, *_LABEL_COLUMNS)  # type: ignore[call-overload]
            .join(ArticleLabel, ArticleLabel.article_id == Article.id)  # type: ignore[arg-type]
            .where(ArticleLabel.article_id > last)  # type: ignore[operator]
            .order_by(ArticleLabel.article_id)
            .limit(batch)
        )
        with engine.connect() as connection:
            rows = []
            for row in connection.execute(query):
                mapping = row._mapping
                article = _article(mapping)
                rows.append((article, Label(
                    article.id, mapping["verdict"], mapping["label_watch"], mapping["label_round"],
                    mapping["labelled_at"], mapping["note"],
                )))
        if not rows:
            return
        yield rows
        last = rows[-1][0].id


def _article(row: Any) -> StoredArticle:
    return StoredArticle(
        id=int(row["id"]), title=row["title"], summary=row["summary"], language=row["language"],
        first_seen_at=row["first_seen_at"], flagged=bool(row["flagged"]), watch=row["watch"],
        round=None if row["round"] is None else int(row["round"]), decision=row["decision"] or "",
        rules_fingerprint=row["rules_fingerprint"],
    )
