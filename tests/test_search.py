"""Archive search: words normalised like the rules, phrases, ranking, filters and bad queries,
on a real SQLite file and the real PostgreSQL; the index kept by the writer, by a repair, and
built by migration 0009 for an archive that already holds articles."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from alembic import command
from monitor.cli import main
from monitor.config import Config
from monitor.models import utcnow
from monitor.pipeline import prepare_entry
from monitor.search import (
    QueryError,
    mark_snippet,
    parse_query,
    search_request,
    search_words,
)
from monitor.sources.fetch import FetchOutcome
from monitor.sources.parse import ParsedEntry
from monitor.store import PollResult, Store, alembic_config, make_engine, upgrade
from monitor.store.search import catch_up, fts5_expression, search
from tests.conftest import make_config

NOW = datetime(2026, 11, 20, 8, tzinfo=UTC)

# Invented texts: each names what a test looks for.
ARTICLES = {
    "clitic": ("وفد كويتي يصل إلى لندن", "انطلقت أعمال الجولة الجديدة للحوار الإستراتيجي بين البلدين في لندن اليوم."),
    "title": ("الحوار الاستراتيجي يبحث ملف الطاقة", "اجتماع في العاصمة لبحث ملفات الطاقة والتجارة."),
    "body": ("لقاء في العاصمة", "وتناول اللقاء الحوار الاستراتيجي وملف الطاقة والاستثمار بين الجانبين."),
    "split": ("حوار مفتوح مع الطلبة", "قدم الوزير في حوار مع الطلبة رؤيته للتخطيط الاستراتيجي للتعليم."),
    "english": ("Ministers hold strategic talks in London", "The TALKS covered energy and trade between the two countries."),
    "waw": ("وحوار بين الجانبين", "وصل الوفد اليوم."),
}


def entry(guid: str, title: str, body: str, published: datetime = NOW) -> ParsedEntry:
    return ParsedEntry(
        guid=guid, link=f"https://k.example/{guid}", title=title, summary=body, published=published,
        published_is_fallback=False, author=None, language="ar",
    )


def store_entries(store: Store, config: Config, entries: list[ParsedEntry], feed_id: str = "kuna") -> None:
    """Through the writer, as a poll stores them."""
    due = {feed.id: feed for feed in store.claim_due_feeds(utcnow(), "test", timedelta(minutes=5))}
    feed = due[feed_id]
    outcome = FetchOutcome(
        feed_id=feed.id, requested_url=feed.url, final_url=feed.url, permanent_redirect=None, status="ok",
        http_status=200, body=None, headers={}, etag=None, last_modified=None, body_hash="h",
        retry_after=None, error=None, elapsed=0.0,
    )
    candidates = tuple(prepare_entry(e, config.rules, config.dedup) for e in entries)
    store.record_polls([PollResult(
        feed=feed, outcome=outcome, candidates=candidates, error=None, fetched_at=utcnow(),
        next_poll_at=utcnow(), rules_fingerprint=config.rules.fingerprint, dedup_config=config.dedup,
    )])


def open_archive(tmp_path: Path, db_url: str) -> tuple[Config, Store]:
    config = make_config(tmp_path, '[[feeds]]\nid = "kuna"\nname = "كونا"\nurl = "http://127.0.0.1:9/kuna.xml"\n', db_url=db_url)
    engine = make_engine(db_url)
    upgrade(engine)
    store = Store(engine)
    store.sync_feeds(config.feeds, timedelta(minutes=15), utcnow())
    return config, store


def found(store: Store, query: str, **options: object) -> list[str]:
    request = search_request(
        query, since=options.get("since"), flagged=bool(options.get("flagged")), watch=options.get("watch"),  # type: ignore[arg-type]
        limit=20, known_watches=["kw-us", "kw-uk"], now=NOW + timedelta(days=1),
    )
    catch_up(store.engine)  # what `monitor search` and the daemon do after a polling pass
    with store.engine.connect() as connection:
        return [hit.url.rsplit("/", 1)[1] for hit in search(connection, request)]  # type: ignore[union-attr]


@pytest.fixture()
def archive(tmp_path: Path, db_url: str):
    config, store = open_archive(tmp_path, db_url)
    store_entries(store, config, [entry(guid, title, body) for guid, (title, body) in ARTICLES.items()])
    yield config, store
    store.engine.dispose()


# -- the words (pure) ------------------------------------------------------------------------


def test_clitics_letter_variants_diacritics_and_tatweel_give_the_same_words() -> None:
    assert search_words("للحوار الإستراتيجي") == search_words("الحوار الاستراتيجي") == ["حوار", "استراتيجي"]
    assert search_words("والحِوارُ الاسـتراتيجيّ") == ["حوار", "استراتيجي"]
    assert search_words("بالمملكة") == search_words("المملكه") == ["مملكه"]
    assert search_words("الى") == ["الي"]  # what is left after the article must be a word


def test_english_case_and_plurals_give_the_same_words() -> None:
    assert search_words("Strategic TALKS, Countries and Boxes") == ["strategic", "talk", "country", "and", "box"]
    assert search_words("news bus analysis") == search_words("News bus analysis")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("...،؛!?", "no words to search for"),
        ("AND", "AND is search-engine syntax"),
        ("الحوار OR الكويت", "OR is search-engine syntax"),
        ("NEAR(الحوار الكويت)", "search-engine syntax"),
        ("حوار*", "'*' is search-engine syntax"),
        ("^حوار", "'^' is search-engine syntax"),
        ("title:حوار", "search-engine syntax"),
        ("title:", "search-engine syntax"),
        ('"الحوار الاستراتيجي', "unclosed quote"),
        ("«الحوار", "unclosed quote"),
        ("ن" * 200, "(200 letters) is not a word"),
        ("x " * 300, "at most 500"),
    ],
)
def test_bad_queries_are_one_line_errors(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=None) as error:
        parse_query(query)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_operator_words_inside_a_phrase_are_words_and_stop_words_leave_a_query_with_others() -> None:
    assert [t.words for t in parse_query('"war AND peace"').terms] == [("war", "and", "peace")]
    assert [t.words for t in parse_query("talks in London").terms] == [("talk",), ("london",)]
    assert [t.words for t in parse_query("in").terms] == [("in",)]


def test_the_fts5_expression_quotes_every_form() -> None:
    expression = fts5_expression(parse_query('«الحوار الاستراتيجي» talks'))
    assert expression.startswith('("حوار استراتيجي" OR "وحوار استراتيجي" OR ')
    assert expression.endswith(' AND ("talk")')


def test_the_snippet_marks_the_matched_words_as_published() -> None:
    snippet = mark_snippet(ARTICLES["clitic"][1], parse_query("الحوار الاستراتيجي"))
    assert "[للحوار] [الإستراتيجي]" in snippet
    long = "كلمة " * 400 + "الحوار الاستراتيجي في لندن" + " كلمة" * 400
    snippet = mark_snippet(long, parse_query("الحوار"), width=100)
    assert snippet.startswith("… ") and snippet.endswith(" …") and "[الحوار]" in snippet and len(snippet) < 130


def test_since_in_the_future_and_unknown_watches_are_refused() -> None:
    with pytest.raises(QueryError, match="in the future"):
        search_request("حوار", since="2099-01-01", flagged=False, watch=None, limit=5, known_watches=[], now=NOW)
    with pytest.raises(QueryError, match="unknown watch 'nope'"):
        search_request("حوار", since=None, flagged=False, watch="nope", limit=5, known_watches=["a"], now=NOW)
    with pytest.raises(QueryError, match="--limit"):
        search_request("حوار", since=None, flagged=False, watch=None, limit=0, known_watches=[], now=NOW)


# -- both engines ----------------------------------------------------------------------------


def test_clitic_and_letter_variant_forms_are_found(archive) -> None:
    _, store = archive
    assert "clitic" in found(store, "الحوار الاستراتيجي")
    assert "clitic" in found(store, "«الحوار الاستراتيجي»")
    assert "clitic" in found(store, "الإسْتراتيجيّ")
    assert found(store, "حوار") [-1:] != [] and "waw" in found(store, "حوار")  # «وحوار»: a single-letter clitic
    assert found(store, "talk") == ["english"] == found(store, "Strategic Talks")


def test_title_matches_rank_above_text_matches(archive) -> None:
    _, store = archive
    ranked = found(store, "الحوار الاستراتيجي")
    assert ranked[0] == "title"
    assert set(ranked) == {"title", "body", "clitic", "split"}


def test_a_phrase_needs_its_words_together_and_in_order(archive) -> None:
    _, store = archive
    assert "split" in found(store, "حوار استراتيجي")
    assert "split" not in found(store, '"حوار استراتيجي"')
    assert set(found(store, '"الحوار الاستراتيجي"')) == {"title", "body", "clitic"}
    assert found(store, '"strategic talks"') == ["english"] and found(store, '"talks strategic"') == []


def test_filters_since_flagged_and_watch(tmp_path: Path, db_url: str) -> None:
    config, store = open_archive(tmp_path, db_url)
    flagged_title = "انطلاق الجولة الرابعة من الحوار الاستراتيجي بين الكويت والولايات المتحدة"
    flagged_body = "انطلقت في واشنطن أعمال الجولة الرابعة من الحوار الاستراتيجي بين دولة الكويت والولايات المتحدة الأمريكية."
    store_entries(store, config, [
        entry("old", "الحوار الاستراتيجي قبل عام", "نص قديم", NOW - timedelta(days=400)),
        entry("new", "الحوار الاستراتيجي اليوم", "نص جديد", NOW),
        entry("us", flagged_title, flagged_body, NOW),
    ])
    assert set(found(store, "الحوار")) == {"old", "new", "us"}
    assert set(found(store, "الحوار", since="30d")) == {"new", "us"}
    assert found(store, "الحوار", flagged=True) == ["us"]
    assert found(store, "الحوار", watch="kw-us") == ["us"]
    assert found(store, "الحوار", watch="kw-uk") == []
    store.engine.dispose()


def test_a_repaired_article_is_found_by_its_new_text_only(archive) -> None:
    from sqlmodel import select

    from monitor.models import Article
    from monitor.store.records import Incoming
    from monitor.store.repair import repair

    config, store = archive
    garbled = entry("suspect", "مؤتمر صحفي في الكوي\ufffdت", "نص مشوه \ufffd", NOW)
    garbled = ParsedEntry(**{**vars(garbled), "text_suspect": True})
    store_entries(store, config, [garbled])
    assert found(store, "مشوه") == ["suspect"]
    clean = prepare_entry(entry("suspect", "مؤتمر صحفي في الكويت", "نص سليم عن المؤتمر", NOW), config.rules, config.dedup)
    with store.session() as session:
        assert repair(session, [Incoming("kuna", clean, utcnow())], config.rules.fingerprint) == 1
        session.commit()
        assert session.exec(select(Article.summary).where(Article.guid == "suspect")).one() == "نص سليم عن المؤتمر"
    assert found(store, "مشوه") == []
    assert found(store, "سليم") == ["suspect"]


def test_the_command_prints_results_and_json_lines(archive, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config, _ = archive
    assert main(["--config", str(config.source), "search", "الحوار الاستراتيجي", "--json", "--limit", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and lines[0]["url"].endswith("/title") and lines[0]["in_title"]
    assert {"id", "url", "title", "source", "published", "watch", "story", "score", "snippet"} <= set(lines[0])
    assert lines[0]["source"] == "كونا" and lines[0]["published"] == "2026-11-20T08:00:00Z"
    assert "[" in lines[0]["snippet"] or "[" in lines[1]["snippet"]
    assert main(["--config", str(config.source), "search", "talks"]) == 0
    out = capsys.readouterr().out
    assert "Ministers hold strategic talks" in out and "[TALKS]" in out


@pytest.mark.parametrize("query", ["...", "AND", "NEAR", "*", "^", "title:", '"الحوار', "ا" * 200, "x"])
def test_the_command_refuses_bad_input_in_one_line(archive, capsys: pytest.CaptureFixture[str], query: str) -> None:
    config, _ = archive
    argv = ["--config", str(config.source), "search", query]
    if query == "x":
        argv += ["--since", "2999-01-01"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("monitor: search: ") and err.count("\n") == 1
    assert "Traceback" not in err and "fts5" not in err.lower() and "syntax error" not in err


def test_migration_0009_indexes_an_archive_stored_at_0008(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0008")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO feed (id, url, configured_url, name, enabled, interval_seconds, consecutive_failures,"
            " next_poll_at, article_count) VALUES ('kuna', 'u', 'u', 'كونا', true, 900, 0, :t, 3)"), {"t": NOW})
        for number, (title, body) in enumerate(list(ARTICLES.values())[:3], start=1):
            connection.execute(text(
                "INSERT INTO article (id, feed_id, guid, link, fingerprint, title, summary, published_at,"
                " published_is_fallback, first_seen_at, flagged, score, decision, rules_fingerprint) VALUES"
                " (:id, 'kuna', :g, :link, :fp, :title, :body, :t, false, :t, false, 0, '{}', 'r')"),
                {"id": number, "g": f"g{number}", "fp": f"f{number}", "link": f"https://k.example/{number}", "title": title, "body": body, "t": NOW})
    from monitor.store import search as store_search

    store_search.REBUILD_BATCH = 2  # two batches: the loop over batches is what runs on a big archive
    try:
        upgrade(engine)
    finally:
        store_search.REBUILD_BATCH = 1000
    store = Store(engine)
    assert sorted(found(store, "الحوار الاستراتيجي")) == ["1", "2", "3"]
    engine.dispose()


def test_the_index_is_the_only_schema_the_models_do_not_describe(db_url: str) -> None:
    """What test_store's schema comparison must skip: the index's engine-specific tables."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from monitor.store.search import is_search_index

    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as connection:
        everything = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        skipping = compare_metadata(
            MigrationContext.configure(connection, opts={
                "include_name": lambda name, type_, parent: not (type_ == "table" and is_search_index(name))
            }),
            SQLModel.metadata,
        )
    assert skipping == []
    assert {diff[1].name for diff in everything} <= {
        "article_search", "article_search_data", "article_search_idx", "article_search_docsize", "article_search_config",
        "ix_article_search_document",  # PostgreSQL's GIN index
    }
    engine.dispose()


def test_new_articles_wait_outside_the_writes_and_are_indexed_once_by_catch_up(tmp_path: Path, db_url: str) -> None:
    """The writer only marks new articles pending (indexing in its transactions tripled its
    time); catch_up indexes each exactly once, and a search catches up first."""
    from sqlalchemy import text as sql

    config, store = open_archive(tmp_path, db_url)
    store_entries(store, config, [entry(guid, title, body) for guid, (title, body) in ARTICLES.items()])

    def pending() -> int:
        with store.engine.connect() as connection:
            return connection.execute(sql("SELECT count(*) FROM article WHERE search_pending")).scalar_one()

    assert pending() == len(ARTICLES)
    with store.engine.connect() as connection:  # not searchable before the catch-up
        request = search_request("الحوار الاستراتيجي", since=None, flagged=False, watch=None, limit=20,
                                 known_watches=["kw-us", "kw-uk"], now=NOW + timedelta(days=1))
        assert search(connection, request) == []
    assert catch_up(store.engine, batch=2) == len(ARTICLES)  # several batches
    assert pending() == 0 and catch_up(store.engine) == 0
    assert "clitic" in found(store, "الحوار الاستراتيجي")
    store.engine.dispose()
