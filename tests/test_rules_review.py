"""Changing rules safely (#10 part 5): `monitor rules diff`, `monitor label` and `monitor rules
test` on SQLite and PostgreSQL, against articles stored the way the poller stores them.

The rules here are small and written in the test (not the shipped ones, which change as the
rules are tuned), so that each edit between the two configs causes exactly one known change:
a partner term added (newly flagged), a watch removed (no longer flagged, and a partner
change for an article both watches matched), a round word added (round changed)."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text

from monitor.cli import main
from monitor.config import Config, load_config
from monitor.daemon import open_store
from monitor.models import Article, ArticleLabel, Feed
from monitor.pipeline import prepare_entry
from monitor.relevance import Decision
from monitor.rules_review import DiffSummary, change_kind, run_diff
from monitor.rules_score import Scores, judge
from monitor.sources.fetch import FetchOutcome
from monitor.sources.parse import ParsedEntry
from monitor.store import DueFeed, PollResult, Store
from monitor.store.labels import Label, article_batches
from monitor.store.records import decision_json
from tests.conftest import write_config

NOW = datetime.now(UTC).replace(microsecond=0)

RULES_OLD = """
[terms]
kuwait = ["كويت", "Kuwait"]
us = ["الولايات المتحدة", "واشنطن"]
uk = ["المملكة المتحدة", "بريطانيا", "لندن"]
dialogue = ["الحوار الاستراتيجي", "لجنة التوجيه"]
round_word = ["جولة"]

[[watches]]
id = "kw-us"
all = ["kuwait", "us"]
any = ["dialogue"]
threshold = 1.0
round_after = ["round_word"]
[[watches.clauses]]
terms = ["dialogue"]

[[watches]]
id = "kw-uk"
all = ["kuwait", "uk"]
any = ["dialogue"]
threshold = 1.0
round_after = ["round_word"]
[[watches.clauses]]
terms = ["dialogue"]
"""
# A partner term added («العم سام»), a round word added («دورة»), the kw-uk watch removed.
RULES_NEW = (
    RULES_OLD.replace('"واشنطن"]', '"واشنطن", "العم سام"]')
    .replace('round_word = ["جولة"]', 'round_word = ["جولة", "دورة"]')
    .split('\n[[watches]]\nid = "kw-uk"')[0]
)

ARTICLES = {  # key: (title, text, first seen days ago)
    "us": ("الكويت وواشنطن تختتمان الجولة الخامسة من الحوار الاستراتيجي",
           "اختتمت في الكويت الجولة الخامسة من الحوار الاستراتيجي بين الكويت والولايات المتحدة.", 2),
    "uk": ("اجتماع لجنة التوجيه بين الكويت والمملكة المتحدة",
           "عقدت لجنة التوجيه بين الكويت والمملكة المتحدة اجتماعها في لندن.", 3),
    "both": ("الحوار الاستراتيجي بين الكويت وبريطانيا في لندن",
             "انعقد الحوار الاستراتيجي بين الكويت وبريطانيا في لندن بحضور مراقب من واشنطن.", 4),
    "sam": ("الكويت والعم سام في الجولة الخامسة من الحوار الاستراتيجي",
            "بدأت الجولة الخامسة من الحوار الاستراتيجي بين الكويت والعم سام اليوم.", 5),
    "session": ("الدورة السادسة من الحوار الاستراتيجي بين الكويت وواشنطن",
                "انطلقت الدورة السادسة من الحوار الاستراتيجي بين الكويت وواشنطن.", 6),
    "books": ("افتتاح معرض الكتاب في الكويت", "افتتح معرض الكتاب أبوابه اليوم بمشاركة دور النشر.", 7),
    "old_uk": ("لجنة التوجيه بين الكويت وبريطانيا تجتمع", "اجتمعت لجنة التوجيه بين الكويت وبريطانيا.", 40),
}
EXPECTED = {  # what RULES_NEW changes, against RULES_OLD
    "sam": "newly_flagged",
    "uk": "no_longer_flagged",
    "old_uk": "no_longer_flagged",
    "both": "watch_changed",
    "session": "round_changed",
}
CHANGE_KEYS = ["id", "kind", "title", "first_seen", "before", "after", "matches", "before_matches", "explanation"]


# -- an archive stored the way the poller stores it -----------------------------------------------------


def _configs(tmp_path: Path, db_url: str) -> tuple[Config, Path]:
    feeds = '[[feeds]]\nid = "kuna"\nurl = "http://127.0.0.1:9/kuna.xml"\n'
    old = write_config(tmp_path / "old", feeds + RULES_OLD, db_url=db_url, with_rules=False)
    new = write_config(tmp_path / "new", feeds + RULES_NEW, db_url=db_url, with_rules=False)
    return load_config(old, {}), new


def _store(config: Config, keys: list[str] | None = None) -> tuple[Store, dict[str, int]]:
    """Each article recorded by its own poll, at the time it was first seen; its stored id."""
    store = open_store(config)
    feed = DueFeed("kuna", "http://127.0.0.1:9/kuna.xml", None, None, None, 900, 0, None)
    outcome = FetchOutcome(
        feed_id="kuna", requested_url=feed.url, final_url=feed.url, permanent_redirect=None, status="ok",
        http_status=200, body=None, headers={}, etag=None, last_modified=None, body_hash=None,
        retry_after=None, error=None, elapsed=0.01,
    )
    for key in sorted(keys or ARTICLES, key=lambda k: -ARTICLES[k][2]):
        title, body, days = ARTICLES[key]
        seen = NOW - timedelta(days=days)
        entry = ParsedEntry(guid=key, link=f"https://kuna.example/{key}", title=title, summary=body,
                            published=seen, published_is_fallback=False, author=None, language="ar")
        candidate = prepare_entry(entry, config.rules, config.dedup)
        store.record_poll(PollResult(
            feed=feed, outcome=outcome, candidates=(candidate,), error=None, fetched_at=seen,
            next_poll_at=seen + timedelta(minutes=15), rules_fingerprint=config.rules.fingerprint,
            dedup_config=config.dedup,
        ))
    with store.session() as session:
        ids = {guid: article_id for article_id, guid in session.exec(select(Article.id, Article.guid))}
    return store, ids


def _snapshot(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return [
            connection.execute(select(Article).order_by(Article.id)).all(),
            connection.execute(select(Feed).order_by(Feed.id)).all(),
            connection.execute(select(ArticleLabel)).all(),
        ]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    err = "".join(line for line in captured.err.splitlines(keepends=True) if not line.startswith("{"))  # logs
    return status, captured.out, err


# -- rules diff --------------------------------------------------------------------------------------------


def test_rules_diff_reports_each_kind_of_change_and_writes_nothing(tmp_path: Path, db_url: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config, new = _configs(tmp_path, db_url)
    store, ids = _store(config)
    before = _snapshot(store.engine)

    status, out, err = _cli(capsys, "--config", str(config.source), "rules", "diff", str(new), "--json")

    assert status == 0
    changes = [json.loads(line) for line in out.splitlines()]
    assert {change["id"]: change["kind"] for change in changes} == {ids[key]: kind for key, kind in EXPECTED.items()}
    assert [change["id"] for change in changes] == sorted(change["id"] for change in changes)
    assert all(list(change) == CHANGE_KEYS for change in changes)
    by_key = {key: next(c for c in changes if c["id"] == ids[key]) for key in EXPECTED}
    sam = by_key["sam"]
    assert sam["before"]["flagged"] is False and sam["after"] == {
        "flagged": True, "watch": "kw-us", "round": 5, "score": sam["after"]["score"], "topics": []}
    assert {"term": "العم سام", "field": "title", "text": "والعم سام"}.items() <= next(
        m for m in sam["matches"] if m["term"] == "العم سام").items()
    uk = by_key["uk"]
    assert (uk["before"]["watch"], uk["after"]["flagged"]) == ("kw-uk", False)
    assert {m["term"] for m in uk["before_matches"]} >= {"لجنة التوجيه", "المملكة المتحدة"}
    assert (by_key["both"]["before"]["watch"], by_key["both"]["after"]["watch"]) == ("kw-uk", "kw-us")
    assert (by_key["session"]["before"]["round"], by_key["session"]["after"]["round"]) == (None, 6)
    assert err.strip().splitlines()[-1] == (
        "rules diff: 7 articles compared (all stored): 1 newly flagged, 2 no longer flagged, "
        "1 partner changed, 1 round changed"
    )
    assert _snapshot(store.engine) == before


def test_rules_diff_text_names_each_article_its_title_and_the_deciding_matches(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config, new = _configs(tmp_path, db_url)
    _, ids = _store(config)

    status, out, _ = _cli(capsys, "--config", str(config.source), "rules", "diff", str(new), "--since", "30d")

    assert status == 0
    heads = [line for line in out.splitlines() if not line.startswith(" ")]
    assert len(heads) == 5  # four changes (the 40-day-old one is outside --since), the summary
    assert heads[-1].startswith("rules diff: 6 articles compared (first seen since ")
    assert heads[-1].endswith(": 1 newly flagged, 1 no longer flagged, 1 partner changed, 1 round changed")
    sam = next(line for line in heads if line.split()[2:3] == [str(ids["sam"])])
    assert sam.startswith("newly flagged") and "not flagged -> kw-us round 5" in sam and ARTICLES["sam"][0] in sam
    block = out[out.index(sam):].splitlines()
    assert "«والعم سام» (title, term «العم سام»)" in block[1] and block[2].startswith("    now: kw-us: score")
    uk = next(line for line in heads if line.startswith("no longer flagged"))
    assert str(ids["uk"]) in uk and "kw-uk -> not flagged" in uk
    assert "matched before: «لجنة التوجيه» (title)" in out[out.index(uk):].splitlines()[1]


def test_rules_diff_compares_with_what_the_running_rules_decide_not_with_stale_decisions(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Articles stored under the old rules, the daemon now running the new ones without having
    reclassified yet: a diff of the new rules against themselves changes nothing."""
    config, new = _configs(tmp_path, db_url)
    _store(config)

    status, out, _ = _cli(capsys, "--config", str(new), "rules", "diff", str(new))

    assert status == 0
    assert out.splitlines() == [
        ("rules diff: 7 articles compared (all stored): 0 newly flagged, 0 no longer flagged, "
         "0 partner changed, 0 round changed"),
    ]


def test_rules_diff_reads_in_id_ordered_batches_and_misses_none(tmp_path: Path, db_url: str) -> None:
    config, new = _configs(tmp_path, db_url)
    store, ids = _store(config)
    batches = list(article_batches(store.engine, batch=2))
    assert [len(batch) for batch in batches] == [2, 2, 2, 1]
    assert [a.id for batch in batches for a in batch] == sorted(ids.values())
    since = NOW - timedelta(days=4, hours=12)
    assert [a.id for batch in article_batches(store.engine, since, batch=1) for a in batch] == sorted(
        ids[key] for key in ("us", "uk", "both"))
    assert list(article_batches(store.engine, NOW + timedelta(days=1))) == []

    class Sink:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    out, err = Sink(), Sink()
    summary = run_diff(store.engine, config.rules, load_config(new, {}).rules, None, out, err, as_json=True, batch=3)  # type: ignore[arg-type]
    assert summary.compared == 7 and sum(summary.counts.values()) == len(EXPECTED) == len(out.text.splitlines())


def test_rules_diff_memory_stays_that_of_one_batch(tmp_path: Path, db_url: str) -> None:
    """3,000 stored articles of ~7 KB each as Python strings (~21 MB): read 100 at a time, the
    diff's peak allocation stays that of a batch, far below the archive's."""
    config, new = _configs(tmp_path, db_url)
    store = open_store(config)
    filler = " ".join(f"قال المسؤول في تصريح اليوم إن الاجتماع بحث سبل التعاون رقم {n}" for n in range(60))
    sam_title, sam_body, _ = ARTICLES["sam"]
    unflagged = decision_json(config.rules.classify(sam_title, sam_body).to_json_dict())
    with store.engine.begin() as connection:
        connection.execute(insert(Article), [
            {"feed_id": "kuna", "guid": f"g{n}", "link": None, "canonical_url": None, "fingerprint": f"{n:064x}",
             "title": sam_title if n % 150 == 0 else f"خبر رقم {n}", "summary": f"{n} {sam_body if n % 150 == 0 else ''} {filler}",
             "language": "ar", "published_at": NOW, "published_is_fallback": False, "first_seen_at": NOW,
             "flagged": False, "score": 0.0, "decision": unflagged, "rules_fingerprint": config.rules.fingerprint}
            for n in range(3000)
        ])
    held = sum(len(a.summary) * 2 for batch in article_batches(store.engine) for a in batch)  # Arabic: 2 bytes a character

    class Sink:
        lines = 0

        def write(self, text: str) -> None:
            self.lines += text.count("\n")

        def flush(self) -> None:
            pass

    out, err = Sink(), Sink()
    tracemalloc.start()
    try:
        summary = run_diff(store.engine, config.rules, load_config(new, {}).rules, None, out, err, batch=100)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (summary.compared, summary.counts["newly_flagged"], sum(summary.counts.values())) == (3000, 20, 20)
    assert held > 20 * 2**20
    assert peak < held / 4, f"peak {peak / 2**20:.1f} MB for {held / 2**20:.0f} MB of stored text"
    store.engine.dispose()


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda rules: rules.replace('all = ["kuwait", "us"]', 'all = ["kuwait", "usa"]'),
         "watches[0].all[1]: unknown term list 'usa'"),
        (lambda rules: rules.replace("threshold = 1.0", 'threshold = "high"', 1), "watches[0].threshold"),
        (lambda rules: rules + "\n[terms", "not valid TOML"),
    ],
)
def test_a_bad_new_config_is_one_line_naming_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         edit: Any, problem: str) -> None:
    config, _ = _configs(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(RULES_OLD), encoding="utf-8")

    status, out, err = _cli(capsys, "--config", str(config.source), "rules", "diff", str(bad))

    assert status == 2 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith(f"monitor: config error: {bad}: ") and problem in line


def test_rules_diff_bad_since_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, new = _configs(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")
    status, _, err = _cli(capsys, "--config", str(config.source), "rules", "diff", str(new), "--since", "lately")
    assert status == 2 and err.startswith("monitor: rules diff --since: cannot read 'lately'") and err.count("\n") == 1
    status, _, err = _cli(capsys, "--config", str(config.source), "rules", "diff", str(tmp_path / "nope.toml"))
    assert status == 2 and "nope.toml: config file not found" in err and err.count("\n") == 1


def test_change_kinds() -> None:
    def decision(flagged: bool, watch: str | None = None, round: int | None = None, score: float = 1.0) -> Decision:
        return Decision(flagged, watch, score, 1.0, round, (), ())

    assert change_kind(decision(False), decision(True, "kw-us")) == "newly_flagged"
    assert change_kind(decision(True, "kw-us", 5), decision(False)) == "no_longer_flagged"
    assert change_kind(decision(True, "kw-uk", 5), decision(True, "kw-us", 6)) == "watch_changed"
    assert change_kind(decision(True, "kw-us", 5), decision(True, "kw-us", None)) == "round_changed"
    assert change_kind(decision(True, "kw-us", 5, 3.0), decision(True, "kw-us", 5, 9.0)) is None
    assert change_kind(decision(False, score=0.0), decision(False, score=0.5)) is None
    assert DiffSummary().line(None).endswith("0 partner changed, 0 round changed")


# -- label and rules test ------------------------------------------------------------------------------------


def test_label_stores_replaces_and_checks_its_inputs(tmp_path: Path, db_url: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = _configs(tmp_path, db_url)
    store, ids = _store(config, ["us", "books"])
    cfg = ["--config", str(config.source)]

    assert _cli(capsys, *cfg, "label", str(ids["us"]), "relevant", "--round", "5") == (
        0, f"article {ids['us']}: relevant kw-us round 5\n", "")  # the watch it is flagged for
    assert _cli(capsys, *cfg, "label", str(ids["us"]), "irrelevant", "--note", "an opinion piece") == (
        0, f"article {ids['us']}: irrelevant (was relevant kw-us round 5)\n", "")
    assert _cli(capsys, *cfg, "label", str(ids["us"]), "irrelevant", "--note", "an opinion piece")[0] == 0
    with store.engine.connect() as connection:
        rows = connection.execute(select(ArticleLabel)).all()
    assert [(r.article_id, r.verdict, r.watch, r.round, r.note) for r in rows] == [
        (ids["us"], "irrelevant", None, None, "an opinion piece")]

    bad = {
        ("label", "999999", "relevant", "--watch", "kw-us"): "label: article 999999 is not stored",
        ("label", str(ids["books"]), "relevant"): "label: --watch: article",
        ("label", str(ids["us"]), "relevant", "--watch", "kw-fr"): "label: --watch: unknown watch 'kw-fr' (known: kw-us, kw-uk)",
        ("label", str(ids["us"]), "irrelevant", "--round", "5"): "label: --round: an irrelevant article has no round",
        ("label", str(ids["us"]), "irrelevant", "--watch", "kw-us"): "label: --watch: an irrelevant article",
        ("label", str(ids["us"]), "relevant", "--round", "0"): "label: --round: 0 is not a round number",
    }
    for args, message in bad.items():
        status, out, err = _cli(capsys, *cfg, *args)
        assert (status, out, err.count("\n")) == (2, "", 1), args
        assert err.startswith(f"monitor: {message}"), err
    assert "not flagged for any watch" in _cli(capsys, *cfg, "label", str(ids["books"]), "relevant")[2]
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM article_label")).scalar_one() == 1


def test_rules_test_scores_the_labels_and_lists_the_disagreements(tmp_path: Path, db_url: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config, new = _configs(tmp_path, db_url)
    _, ids = _store(config)
    cfg = ["--config", str(config.source)]
    labels = [
        ("us", "relevant", "--round", "5"),  # right: flag, partner, round
        ("session", "relevant", "--watch", "kw-us", "--round", "6"),  # old rules: no round
        ("both", "relevant", "--watch", "kw-us"),  # old rules: kw-uk
        ("sam", "relevant", "--watch", "kw-us", "--round", "5"),  # old rules: not flagged
        ("uk", "irrelevant"),  # flagged by the old rules
        ("books", "irrelevant"),
    ]
    for key, *args in labels:
        assert _cli(capsys, *cfg, "label", str(ids[key]), *args)[0] == 0

    status, out, _ = _cli(capsys, *cfg, "rules", "test", "--json")
    assert status == 0
    [report] = [json.loads(line) for line in out.splitlines()]
    assert {k: v for k, v in report.items() if k != "disagreements"} == {
        "labelled": 6, "true_positives": 3, "false_positives": 1, "false_negatives": 1, "true_negatives": 1,
        "precision": 0.75, "recall": 0.75, "f1": 0.75, "partner_accuracy": round(2 / 3, 4), "partner_checked": 3,
        "round_accuracy": round(1 / 3, 4), "rounds_checked": 3,
    }
    problems = {item["id"]: item["problems"] for item in report["disagreements"]}
    assert problems == {
        ids["session"]: ["wrong_round"], ids["both"]: ["wrong_partner"],
        ids["sam"]: ["false_negative", "wrong_round"], ids["uk"]: ["false_positive"],
    }
    uk = next(item for item in report["disagreements"] if item["id"] == ids["uk"])
    assert uk["label"]["verdict"] == "irrelevant" and uk["rules"]["watch"] == "kw-uk" and uk["matches"]

    status, out, _ = _cli(capsys, *cfg, "rules", "test", str(new))  # the new rules get them all right
    assert status == 0
    lines = out.splitlines()
    assert lines == [
        "labelled 6: 4 true positives, 0 false positives, 0 false negatives, 2 true negatives",
        "flag     precision 1.000  recall 1.000  F1 1.000",
        "partner  4/4 true positives = 1.000",
        "round    3/3 labelled rounds = 1.000",
    ]
    status, out, _ = _cli(capsys, *cfg, "rules", "test")
    heads = [line for line in out.splitlines() if not line.startswith(" ")]
    assert heads[0].startswith("wrong round") and str(ids["session"]) in heads[0]
    assert "label: relevant kw-us round 6; rules: kw-us" in heads[0]
    assert heads[-3] == "flag     precision 0.750  recall 0.750  F1 0.750"


def test_rules_test_with_no_labels_says_so(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = _configs(tmp_path, db_url)
    status, out, _ = _cli(capsys, "--config", str(config.source), "rules", "test")
    assert status == 0 and out.splitlines()[1] == "flag     precision n/a  recall n/a  F1 n/a"


def test_scores_follow_eval_relevance() -> None:
    scores = Scores()
    label = Label(1, "relevant", "kw-us", None, NOW)
    flagged = Decision(True, "kw-us", 5.0, 1.0, 3, (), ())
    assert judge(label, flagged, scores) == ()
    assert judge(dataclasses.replace(label, round=4), flagged, scores) == ("wrong_round",)
    assert judge(dataclasses.replace(label, verdict="irrelevant", watch=None), Decision(False, None, 0, 1, None, (), ()),
                 scores) == ()
    assert (scores.true_positives, scores.true_negatives, scores.rounds_labelled, scores.rounds_right) == (2, 1, 1, 0)
    assert scores.f1 == 1.0 and scores.round_accuracy == 0.0
