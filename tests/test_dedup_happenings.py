"""Happenings of one round are different stories, and one happening is one story in Arabic
and English: the kind of happening read from the text (monitor.dedup.events), the
cross-language join (dedup.decide), on the `monitor cluster` path and in the store.

tests/fixtures/happenings.jsonl was written for these tests (not news): a round 7 of the
Kuwait-US dialogue (preview, arrival, session, two working groups, a follow-up) and a 23rd
Joint Steering Group (preparatory meeting, session), each happening reported in Arabic and
most in English too, all within 72 hours of their neighbours.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import select

from monitor.dedup import (
    DedupConfig,
    cluster_lines,
    compute_features,
    event_kind,
    features_from_bytes,
    features_to_bytes,
    same_story,
)
from monitor.dedup.events import lead_sentence
from monitor.daemon import open_store
from monitor.language import text_language
from monitor.models import Article, Story
from monitor.pipeline import prepare_entry
from monitor.relevance import RuleSet, WatchConfig, compile_rules
from monitor.sources.parse import ParsedEntry
from tests.test_dedup_store import _config, _poll

ROOT = Path(__file__).resolve().parent.parent
HAPPENINGS = [json.loads(line) for line in (ROOT / "tests" / "fixtures" / "happenings.jsonl").read_text(encoding="utf-8").splitlines()]
BY_ID = {row["id"]: row for row in HAPPENINGS}
CONFIG = DedupConfig()


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    document = tomllib.loads((ROOT / "config" / "monitor.toml").read_text(encoding="utf-8"))
    return compile_rules(document["terms"], [WatchConfig.model_validate(w) for w in document["watches"]], document["topics"])


# -- the kind of happening ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("السفيرة: الجولة السادسة من الحوار الاستراتيجي تنطلق غداً", "preview"),
        ("الحوار الاستراتيجي الكويتي الأمريكي المرتقب يبحث الطاقة", "preview"),
        ("UK envoy: next Joint Steering Group to prioritise cyber security", "preview"),
        ("Kuwait and US will hold seventh round of Strategic Dialogue", "preview"),
        ("وفد كويتي يصل إلى واشنطن للمشاركة في الحوار الاستراتيجي", "arrival"),
        ("Kuwaiti delegation arrives in London ahead of Joint Steering Group", "arrival"),
        ("اجتماع تحضيري للدورة الـ23 لمجموعة التوجيه الكويتية البريطانية", "preparatory"),
        ("Officials hold preparatory meeting for 23rd JSG", "preparatory"),
        ("مجموعة العمل الأمنية الكويتية الأمريكية تبحث مكافحة الإرهاب", "working_group"),
        ("Kuwait-UK health sub-group meets as part of 16th JSG", "working_group"),
        ("تأجيل الجولة الثالثة من الحوار الاستراتيجي", "postponement"),
        ("Third round of Kuwait-US dialogue postponed", "postponement"),
        ("الخارجية الأمريكية تشيد بنتائج الجولة السابعة", "follow_up"),
        ("State Department welcomes outcomes of Kuwait dialogue", "follow_up"),
        ("الكويت وواشنطن تختتمان الجولة السابعة من الحوار الاستراتيجي", "session"),
        ("بيان مشترك: الكويت والولايات المتحدة", "session"),
        ("Joint Statement on the Seventh U.S.-Kuwait Strategic Dialogue", "session"),
        ("UK and Kuwait hold 23rd Joint Steering Group in London", "session"),
        # No cue: the kind stays open (such an article joins any story but bridges none).
        ("لندن والكويت تتفقان على عودة «محارب الصحراء» العام المقبل", None),
        ("مجموعة من المسؤولين تناقش الحوار الاستراتيجي", None),
        ("Opinion: time to give the Kuwait-US Strategic Dialogue a permanent home", None),
    ],
)
def test_kind_of_happening_from_the_headline(title: str, kind: str | None) -> None:
    assert event_kind(title) == kind


def test_the_lead_names_the_happening_when_the_headline_does_not() -> None:
    assert event_kind("محليات", "مجموعة عمل كويتية أمريكية تؤكد أهمية التعاون في مكافحة الإرهاب. وقال...") == "working_group"
    assert event_kind("Round 5", "WASHINGTON, Jan 26 (KUNA) -- Kuwait and the US held the fifth round today.") == "session"


def test_background_in_the_lead_names_no_happening() -> None:
    """A lead recounts the past ("two months after its postponement") and the framework
    ("...and its working groups"): neither is what the article reports."""
    postponed_before = "الكويت: «الشرق الأوسط» حط الوزير رحاله بالكويت ليترأس أعمال الجولة الثالثة بعد نحو شهرين على تأجيلها."
    assert event_kind("بومبيو في الكويت", postponed_before) == "session"
    framework = ("أكد وزير الخارجية أن الحوار الاستراتيجي بين دولة الكويت والولايات المتحدة الأمريكية يمضي بثبات، "
                 "وأن وفود الجانبين تتابع أعمال الحوار ومذكرات التفاهم ومجموعات العمل في الدفاع والأمن.")
    assert event_kind("الكويت والولايات المتحدة تواصلان الحوار", framework) is None


def test_lead_sentence_skips_the_dateline_and_keeps_abbreviations() -> None:
    lead = lead_sentence("KUWAIT, Nov 18 (KUNA) -- The U.S. and Kuwait met today. Then more.")
    assert lead == "The U.S. and Kuwait met today"
    assert lead_sentence("لندن - 28 - 11 (كونا) -- اختتمت اليوم أعمال الاجتماع. وبحث الجانبان") == "اختتمت اليوم أعمال الاجتماع"


@pytest.mark.parametrize(
    ("title", "body", "declared", "expected"),
    [
        ("Kuwait, UK hold 11th Joint Steering Group", "KUWAIT (KUNA) -- Kuwait and the UK held...", "ar", "en"),
        ("الكويت والمملكة المتحدة", "عقدت الكويت والمملكة المتحدة اجتماعهما", "en", "ar"),
        ("Kuwait", "", "ar", "ar"),  # too few letters to overrule the feed
        ("Le Koweït et les États-Unis tiennent leur dialogue", "", "fr", "fr"),  # a Latin-script feed keeps its word
    ],
)
def test_language_from_the_letters_overrules_the_feed_only_when_clear(title: str, body: str, declared: str, expected: str) -> None:
    assert text_language(title, body, declared) == expected


# -- stories -------------------------------------------------------------------------------------


def _gold_pairs() -> set[tuple[str, str]]:
    events = defaultdict(list)
    for row in HAPPENINGS:
        events[row["event_id"]].append(row["id"])
    return {tuple(sorted(pair)) for ids in events.values() for pair in itertools.combinations(ids, 2)}


def test_each_happening_is_one_story_in_both_languages_and_no_two_merge(rules: RuleSet) -> None:
    lines = [json.dumps(row, ensure_ascii=False) for row in HAPPENINGS]
    stories = defaultdict(list)
    for out, error in cluster_lines(lines, CONFIG, rules=rules):
        assert error is None
        result = json.loads(out)
        stories[result["story"]].append(result["id"])
    predicted = {tuple(sorted(pair)) for ids in stories.values() for pair in itertools.combinations(ids, 2)}
    assert predicted == _gold_pairs()


def _features(rules: RuleSet, row: dict) -> object:
    decision = rules.classify(row["title"], row["body"])
    from monitor.dedup import happening_subject

    return compute_features(row["title"], row["body"], row["url"], datetime.fromisoformat(row["published"]),
                            decision.watch, decision.round, CONFIG,
                            subject=happening_subject(rules.classify, row["title"], row["body"]))


def test_cross_language_join_needs_the_stated_round(rules: RuleSet) -> None:
    session_ar, statement_en = _features(rules, BY_ID["h05"]), _features(rules, BY_ID["h07"])
    assert same_story(statement_en, session_ar, CONFIG)
    assert not same_story(replace(statement_en, round=None), session_ar, CONFIG)
    assert not same_story(replace(statement_en, round=8), session_ar, CONFIG)
    assert not same_story(replace(statement_en, watch="kw-uk"), session_ar, CONFIG)


def test_working_groups_of_one_round_stay_apart_by_subject(rules: RuleSet) -> None:
    security_ar, education_ar, security_en = (_features(rules, BY_ID[i]) for i in ("h08", "h09", "h10"))
    assert same_story(security_en, security_ar, CONFIG)
    assert not same_story(education_ar, security_ar, CONFIG)
    assert not same_story(security_en, education_ar, CONFIG)


def test_features_stored_before_happenings_still_read(rules: RuleSet) -> None:
    features = _features(rules, BY_ID["h05"])
    blob = features_to_bytes(features)
    assert features_from_bytes(blob) == features
    # A blob of the earlier layout: no language, kind or subject in its header.
    length = int.from_bytes(blob[:4], "little")
    header = json.loads(blob[4 : 4 + length])
    for key in ("lang", "event", "subject"):
        header.pop(key)
    old_header = json.dumps(header, separators=(",", ":")).encode()
    old = features_from_bytes(len(old_header).to_bytes(4, "little") + old_header + blob[4 + length :])
    assert (old.language, old.event, old.subject) == (None, None, frozenset())
    assert old.fingerprint == features.fingerprint


def test_the_store_keeps_happenings_apart_and_joins_languages(tmp_path: Path, db_url: str, rules: RuleSet) -> None:
    """Through the real writer, one poll per article in publication order, on SQLite and
    PostgreSQL: the same stories as `monitor cluster`, and each story row records its kind."""
    config = _config(tmp_path, db_url)
    store = open_store(config)
    feeds = ("kuna", "alanba", "alrai")
    for number, row in enumerate(HAPPENINGS):
        published = datetime.fromisoformat(row["published"])
        language = text_language(row["title"], row["body"])
        entry = ParsedEntry(guid=row["url"], link=row["url"], title=row["title"], summary=row["body"], published=published,
                            published_is_fallback=False, author=None, language=language)
        candidate = prepare_entry(entry, rules, config.dedup)
        store.record_poll(_poll(config, feeds[number % 3], [candidate], published))
    with store.session() as session:
        story_of = {row.link: row.story_id for row in session.exec(select(Article))}
        kinds = {story.id: story.event for story in session.exec(select(Story))}
        languages = {row.link: row.language for row in session.exec(select(Article))}
    by_story = defaultdict(list)
    for row in HAPPENINGS:
        by_story[story_of[row["url"]]].append(row["id"])
    predicted = {tuple(sorted(pair)) for ids in by_story.values() for pair in itertools.combinations(ids, 2)}
    assert predicted == _gold_pairs()
    assert kinds[story_of[BY_ID["h07"]["url"]]] == "session"
    assert kinds[story_of[BY_ID["h03"]["url"]]] == "arrival"
    assert languages[BY_ID["h07"]["url"]] == "en" and languages[BY_ID["h05"]["url"]] == "ar"
    store.engine.dispose()
