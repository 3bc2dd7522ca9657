"""The digest in the reader's language (issue #10, part 2): labels, dates, topic tags and round
badges in Arabic or English; a two-language story headed by its write-up in the digest's
language (or the other's when it has none); "also reported by" across both languages with the
other-language outlets marked; the webhook's keys kept. The stories are stored through the
real store on SQLite and PostgreSQL, their members set by hand as the cross-language join
would set them."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from monitor import digest_items, notify
from monitor.config import Config, ConfigError, load_config
from monitor.daemon import open_store
from monitor.digest import (
    HTML_BUDGET_BYTES,
    DigestContent,
    Outlet,
    alert_payload,
    digest_payload,
    digest_subject,
    render_email,
    render_html,
    render_text,
)
from monitor.digest_labels import ARABIC, ENGLISH, article_language, english_ordinal
from monitor.models import Article, Delivery, Story
from monitor.store import Store
from tests.conftest import make_config, write_config
from tests.test_digest import (
    GENERATED,
    elements,
    keys,
    make_content,
    make_item,
    parts,
    sample_items,
)
from tests.test_digest_size import hrefs, long_digest, size

TWELVE_TOPICS = ("defense", "security", "counter_terrorism", "cyber", "trade_investment", "education", "health",
                 "consular", "culture", "environment", "energy", "political")
# The keys of payload version 1 (docs/webhooks.md before this change): kept, with their meaning.
V1_ITEM_KEYS = {"story_id", "headline", "url", "source", "published", "watch", "watch_title", "round", "topics",
                "excerpt", "highlights", "also_reported_by", "more_outlets"}
V1_DIGEST_KEYS = {"version", "digest_id", "delivery_id", "subject", "timezone", "total", "sections"}


def english(content: DigestContent) -> DigestContent:
    return dataclasses.replace(content, language="en")


# -- labels, tags and badges (pure rendering) ------------------------------------------------


def test_english_digest_has_english_labels_dates_and_ltr_layout() -> None:
    content = english(make_content(sample_items()))
    html = render_html(content)
    found = elements(html)
    assert found.named("html")[0] == {"lang": "en", "dir": "ltr"}
    assert found.named("body")[0]["dir"] == "ltr"
    for text in ("Strategic Dialogues Digest", "Sunday, 22 November 2026", "3 stories", "Also reported by:",
                 "United States", "United Kingdom", "Round 6", "#defense", "#cybersecurity", "21 November 2026, 09:15",
                 "Prepared automatically by dialogue-monitor", "3 other outlets"):
        assert text in html, text
    # No Arabic word of the label table is left in an English digest (the articles keep theirs).
    for label in ("موجز الحوارات", "أوردته", "الجولة 6", "أخبار", "نوفمبر", "#دفاع", "معرّف الإرسال", "بالإنجليزية"):
        assert label not in html, label
    text = render_text(content)
    assert "Strategic Dialogues Digest" in text and "Also reported by: القبس, الراي and 3 other outlets" in text
    assert digest_subject(content) == "Strategic Dialogues Digest — 2026-11-22 — 3 stories"


def test_english_email_says_its_language() -> None:
    message = render_email(english(make_content(sample_items())), "m@example.org", ["desk@example.org"], "<m_1@x>")
    assert message["Content-Language"] == "en"
    text, html = parts(message)
    assert "Delivery id: m_0123456789abcdef" in text and 'lang="en"' in html


def test_arabic_digest_keeps_arabic_labels_and_rtl() -> None:
    html = render_html(make_content(sample_items()))
    found = elements(html)
    assert found.named("html")[0] == {"lang": "ar", "dir": "rtl"}
    assert "أوردته أيضًا" in html and "Also reported by" not in html


def test_arabic_digest_shows_all_twelve_topics_in_arabic() -> None:
    item = make_item(topics=TWELVE_TOPICS)
    for rendered in (render_html(make_content([item])), render_text(make_content([item]))):
        for tag in ("#دفاع", "#أمن", "#مكافحة_الإرهاب", "#أمن_سيبراني", "#تجارة_واستثمار", "#تعليم", "#صحة",
                    "#شؤون_قنصلية", "#ثقافة", "#بيئة", "#طاقة", "#سياسة"):
            assert tag in rendered, tag
        for topic in TWELVE_TOPICS:
            assert f"#{topic}" not in rendered
    english_html = render_html(english(make_content([item])))
    assert "#defense" in english_html and "#counter_terrorism" in english_html and "#دفاع" not in english_html


def test_a_topic_the_user_added_shows_as_its_id() -> None:
    assert ARABIC.topic("water") == "water" and ENGLISH.topic("fresh water") == "fresh_water"


def test_round_badges_use_each_frameworks_word() -> None:
    jsg = make_item(story_id="s-uk", watch="kw-uk", round=12, round_word="الدورة")
    us = make_item(story_id="s-us", round=5, round_word="الجولة")
    default = make_item(story_id="s-us-2", round=7)  # no word configured: «الجولة»
    html = render_html(make_content([us, default, jsg]))
    assert "الدورة 12" in html and "الجولة 5" in html and "الجولة 7" in html and "الجولة 12" not in html
    english_html = render_html(english(make_content([dataclasses.replace(us, round_word="round"),
                                                     dataclasses.replace(jsg, round_word="session")])))
    assert "Session 12" in english_html and "Round 5" in english_html
    assert ENGLISH.round_label(16, "{nth} JSG") == "16th JSG" and ENGLISH.round_label(5) == "Round 5"
    assert [english_ordinal(n) for n in (1, 2, 3, 11, 12, 13, 21, 22, 112)] == [
        "1st", "2nd", "3rd", "11th", "12th", "13th", "21st", "22nd", "112th"]


def test_other_language_outlets_are_marked_in_both_directions() -> None:
    item = make_item(also_reported_by=(Outlet("القبس", "ar"), Outlet("Reuters", "en"), Outlet("الراي")), more_outlets=0)
    arabic = render_text(make_content([item]))
    assert "أوردته أيضًا: القبس، Reuters (بالإنجليزية)، الراي" in arabic
    english_text = render_text(english(make_content([item])))
    assert "Also reported by: القبس (Arabic), Reuters, الراي" in english_text
    # A headline in the other language says so too.
    fallback = dataclasses.replace(item, language="en", source="Reuters", also_reported_by=())
    assert "Reuters (بالإنجليزية) ·" in render_text(make_content([fallback]))


def test_marks_and_labels_are_escaped() -> None:
    item = make_item(also_reported_by=(Outlet("<b>x</b>", "en"),), topics=("<script>",))
    html = render_html(make_content([item]))
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt; (بالإنجليزية)" in html
    assert "<script>" not in html


@pytest.mark.parametrize("language", ["ar", "en"])
def test_long_digest_fits_the_budget_in_both_languages(language: str) -> None:
    items = long_digest(400)
    content = dataclasses.replace(make_content(items), language=language)
    html = render_html(content)
    assert size(html) <= HTML_BUDGET_BYTES
    assert hrefs(html) == [item.url for item in items]  # every story keeps at least its link, in order
    assert elements(html).named("html")[0]["lang"] == language
    more = "more stories" if language == "en" else "خبرًا آخر"
    assert more in html


def test_webhook_keeps_its_keys_and_adds_display_ones() -> None:
    items = [dataclasses.replace(item, also_reported_by=(Outlet("Reuters", "en"),)) for item in sample_items()]
    for language in ("ar", "en"):
        data = digest_payload(dataclasses.replace(make_content(items), language=language))["data"]
        assert V1_DIGEST_KEYS <= set(data) and data["version"] == 1 and data["language"] == language
        item = data["sections"][0]["items"][0]
        assert V1_ITEM_KEYS <= set(item)
        assert item["topics"] == ["defense", "cyber"]  # ids, whatever the language
        assert item["also_reported_by"] == ["Reuters"]  # names, without the display mark
        assert item["also_reported_outlets"] == [{"name": "Reuters", "language": "en"}]
        assert item["topic_labels"] == (["دفاع", "أمن_سيبراني"] if language == "ar" else ["defense", "cybersecurity"])
        assert item["round_label"] == ("الجولة 6" if language == "ar" else "Round 6")
    arabic = keys(digest_payload(make_content(items)))
    assert keys(digest_payload(english(make_content(items)))) == arabic
    alert = alert_payload(make_item(), alert_id="urgent", delivery_id="a_1", generated_at=GENERATED, language="en")
    assert alert["data"]["subject"].startswith("Alert — ") and alert["data"]["language"] == "en"


def test_article_language_from_what_was_stored_or_the_title() -> None:
    assert article_language("en-GB") == "en" and article_language("ar_KW") == "ar" and article_language("fa") == "ar"
    assert article_language(None, "Joint Statement on the Fifth U.S.-Kuwait Strategic Dialogue") == "en"
    assert article_language(None, "انطلاق الجولة الخامسة من الحوار الاستراتيجي") == "ar"


# -- configuration ---------------------------------------------------------------------------

CHANNELS = """
[[channels]]
id = "desk"
type = "email"
host = "127.0.0.1"
port = 2525
security = "none"
from = "Dialogue Monitor <monitor@example.org>"
to = ["desk@example.org"]

[[channels]]
id = "hook"
type = "webhook"
url = "https://hooks.example.org/monitor"
secret_env = "HOOK_SECRET"
"""
SECRET = {"HOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def test_digest_language_is_validated(tmp_path: Path) -> None:
    body = CHANNELS + '[[digests]]\nid = "daily"\nat = "07:30"\nwatches = ["kw-us"]\nchannels = ["desk"]\nlanguage = "fr"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, body), SECRET)
    assert caught.value.key == "digests[0].language" and "'ar' or 'en'" in caught.value.problem


def test_round_word_is_validated(tmp_path: Path) -> None:
    body = '[[watches]]\nid = "kw-x"\nany = ["kuwait"]\nround_word = { en = "16th session" }\n'
    path = write_config(tmp_path, body + '[terms]\nkuwait = ["الكويت"]\n', with_rules=False)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.key == "watches[0].round_word.en" and "the number is added" in caught.value.problem


def test_default_config_words_the_jsg_as_sessions(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    words = {watch.id: watch.round_word for watch in config.watches}
    assert (words["kw-uk"].ar, words["kw-uk"].en) == ("الدورة", "session")
    assert (words["kw-us"].ar, words["kw-us"].en) == ("الجولة", "round")
    assert config.digests == [] or all(d.language == "ar" for d in config.digests)


def test_display_keys_do_not_change_the_rules_fingerprint(tmp_path: Path) -> None:
    plain = make_config(tmp_path / "a").rules.fingerprint
    text = (tmp_path / "a" / "monitor.toml").read_text(encoding="utf-8")
    edited = text.replace('round_word = { ar = "الدورة", en = "session" }', 'round_word = { ar = "الاجتماع", en = "{nth} JSG" }')
    assert edited != text
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "monitor.toml").write_text(edited, encoding="utf-8")
    assert load_config(tmp_path / "b" / "monitor.toml", {}).rules.fingerprint == plain


# -- a two-language story through the store (SQLite and PostgreSQL) --------------------------

FEEDS = """
[[feeds]]
id = "kuna-ar"
name = "كونا"
url = "http://127.0.0.1:9/kuna-ar.xml"

[[feeds]]
id = "alqabas"
name = "القبس"
url = "http://127.0.0.1:9/alqabas.xml"

[[feeds]]
id = "kuna-en"
name = "KUNA English"
url = "http://127.0.0.1:9/kuna-en.xml"
language = "en"

[[feeds]]
id = "state-dept"
name = "U.S. Department of State"
url = "http://127.0.0.1:9/state.xml"
language = "en"

[[feeds]]
id = "reuters"
name = "Reuters"
url = "http://127.0.0.1:9/reuters.xml"
language = "en"
"""
AR_TEXT = ("واشنطن (كونا) — انطلقت اليوم أعمال الجولة الخامسة من الحوار الاستراتيجي بين دولة الكويت والولايات "
           "المتحدة الأمريكية، وبحث الجانبان التعاون الدفاعي والأمن السيبراني.")
EN_TEXT = ("WASHINGTON — The United States and Kuwait held the fifth U.S.-Kuwait Strategic Dialogue today, "
           "reaffirming their partnership on defense, cybersecurity, trade and education. " * 3).strip()
BASE = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _config(tmp_path: Path, db_url: str, *, language: str = "ar", alert_language: str = "ar") -> Config:
    body = FEEDS + CHANNELS + f"""
[[digests]]
id = "daily"
at = "07:30"
watches = ["kw-us", "kw-uk"]
channels = ["desk", "hook"]
language = "{language}"

[[alerts]]
id = "urgent"
watches = ["kw-us", "kw-uk"]
channels = ["hook"]
language = "{alert_language}"
"""
    return make_config(tmp_path, body, db_url=db_url, environ=SECRET)


def _story(store: Store, *, watch: str = "kw-us", round_: int = 5) -> Story:
    with store.session() as session:
        story = Story(key=os.urandom(8).hex(), first_seen_at=BASE, watch=watch, round=round_, flagged_at=BASE, score=9.0)
        session.add(story)
        session.commit()
        session.refresh(story)
        return story


def _article(store: Store, story: Story, *, feed_id: str, title: str, text: str, minutes: int, language: str | None,
             flagged: bool = True, full_text: bool = False, duplicate_of: int | None = None, headline: bool = False,
             topics: tuple[str, ...] = ("defense", "cyber")) -> int:
    """Store one member of `story` as the cross-language join leaves it (story_id set)."""
    term = "الحوار الاستراتيجي" if "الحوار الاستراتيجي" in text else "Strategic Dialogue"
    start = text.find(term)
    decision = {"flagged": flagged, "watch": story.watch, "score": 9.0, "round": story.round, "topics": list(topics),
                "matches": [{"term": term, "field": "body", "start": start, "end": start + len(term)}] if start >= 0 else []}
    when = BASE + timedelta(minutes=minutes)
    with store.session() as session:
        article = Article(feed_id=feed_id, guid=os.urandom(6).hex(), link=f"https://{feed_id}.example/{os.urandom(3).hex()}",
                          title=title, summary=text, language=language, fingerprint=os.urandom(8).hex(),
                          published_at=when, first_seen_at=when, flagged=flagged, watch=story.watch if flagged else None,
                          score=9.0, round=story.round, decision=json.dumps(decision), rules_fingerprint="test",
                          story_id=story.id, full_text=full_text, duplicate_of=duplicate_of)
        session.add(article)
        session.flush()
        if headline:
            row = session.get(Story, story.id)
            row.headline_article_id = article.id
            session.add(row)
        session.commit()
        return article.id


def _two_language_story(store: Store) -> dict[str, int]:
    """The Arabic KUNA report (the story's headline), an Arabic daily, and three English
    write-ups: KUNA English's one-line teaser (the earliest), the State Department's joint
    statement (full text), and Reuters' near-copy of that statement (earlier than it)."""
    story = _story(store)
    ids = {"kuna-ar": _article(store, story, feed_id="kuna-ar", title="انطلاق الجولة الخامسة من الحوار الاستراتيجي الكويتي الأمريكي",
                               text=AR_TEXT, minutes=30, language="ar", headline=True)}
    ids["alqabas"] = _article(store, story, feed_id="alqabas", title="الكويت وواشنطن تعقدان الجولة الخامسة من الحوار",
                              text=AR_TEXT, minutes=60, language="ar")
    ids["kuna-en"] = _article(store, story, feed_id="kuna-en", title="Kuwait, US hold 5th Strategic Dialogue",
                              text="Kuwait and the US held the Strategic Dialogue.", minutes=0, language="en")
    ids["state-dept"] = _article(store, story, feed_id="state-dept",
                                 title="Joint Statement on the Fifth U.S.-Kuwait Strategic Dialogue", text=EN_TEXT,
                                 minutes=20, language="en", full_text=True)
    ids["reuters"] = _article(store, story, feed_id="reuters", title="US, Kuwait reaffirm partnership at Strategic Dialogue",
                              text=EN_TEXT, minutes=10, language=None, full_text=True, duplicate_of=ids["state-dept"],
                              flagged=False)
    return ids


def test_arabic_digest_of_a_two_language_story(tmp_path: Path, db_url: str) -> None:
    config = _config(tmp_path, db_url)
    store = open_store(config)
    _two_language_story(store)
    content = notify.preview_digest(store, config, config.digests[0], now=BASE + timedelta(hours=2))
    item = content.sections[0].items[0]
    assert (item.headline, item.source, item.language) == (
        "انطلاق الجولة الخامسة من الحوار الاستراتيجي الكويتي الأمريكي", "كونا", "ar")
    assert set(item.also_reported_by) == {Outlet("القبس", "ar"), Outlet("KUNA English", "en"),
                                          Outlet("U.S. Department of State", "en"), Outlet("Reuters", "en")}
    text = render_text(content)
    assert "Reuters (بالإنجليزية)" in text and "U.S. Department of State (بالإنجليزية)" in text
    assert "القبس (بالإنجليزية)" not in text and "القبس" in text
    assert "الجولة 5" in text and "#دفاع" in text and content.sections[0].title == "الحوار الاستراتيجي الكويتي الأمريكي"
    store.engine.dispose()


def test_english_digest_heads_the_story_with_its_best_english_write_up(tmp_path: Path, db_url: str) -> None:
    config = _config(tmp_path, db_url, language="en")
    store = open_store(config)
    ids = _two_language_story(store)
    content = notify.preview_digest(store, config, config.digests[0], now=BASE + timedelta(hours=2))
    assert content.language == "en" and content.sections[0].title == "Kuwait–US Strategic Dialogue"
    item = content.sections[0].items[0]
    # Not the teaser (earliest, one line) nor the near-copy (earlier, a copy): the statement.
    assert item.headline == "Joint Statement on the Fifth U.S.-Kuwait Strategic Dialogue"
    assert item.source == "U.S. Department of State" and item.language == "en"
    with store.session() as session:
        assert item.url == session.get(Article, ids["state-dept"]).link
    assert item.excerpt.startswith("WASHINGTON") and [item.excerpt[s:e] for s, e in item.highlights] == ["Strategic Dialogue"]
    text = render_text(content)
    # Every other outlet, in order of publication, the Arabic ones marked.
    assert "Also reported by: KUNA English, Reuters, كونا (Arabic), القبس (Arabic)\n" in text
    assert "Round 5" in text and "#defense" in text and "United States" in text
    store.engine.dispose()


def test_fallback_to_the_other_language_when_the_story_has_none(tmp_path: Path, db_url: str) -> None:
    config = _config(tmp_path, db_url, language="en")
    store = open_store(config)
    story = _story(store, watch="kw-uk", round_=12)
    _article(store, story, feed_id="kuna-ar", title="انعقاد الدورة الثانية عشرة لمجموعة التوجيه المشتركة",
             text=AR_TEXT, minutes=0, language="ar", headline=True)
    _article(store, story, feed_id="alqabas", title="مجموعة التوجيه الكويتية البريطانية", text=AR_TEXT, minutes=5, language="ar")
    content = notify.preview_digest(store, config, config.digests[0], now=BASE + timedelta(hours=2))
    item = content.sections[0].items[0]
    assert item.headline == "انعقاد الدورة الثانية عشرة لمجموعة التوجيه المشتركة" and item.language == "ar"
    text = render_text(content)
    assert "كونا (Arabic) ·" in text and "Also reported by: القبس (Arabic)" in text
    assert "Session 12" in text and content.sections[0].title == "Kuwait–UK Joint Steering Group"
    # And the other way: an English-only story in the Arabic digest.
    arabic = _config(tmp_path / "ar", db_url)
    english_only = _story(store)
    _article(store, english_only, feed_id="state-dept", title="Joint Statement on the Fifth U.S.-Kuwait Strategic Dialogue",
             text=EN_TEXT, minutes=0, language="en", headline=True)
    content = notify.preview_digest(store, arabic, arabic.digests[0], now=BASE + timedelta(hours=2))
    items = {item.watch: item for section in content.sections for item in section.items}
    assert items["kw-us"].headline.startswith("Joint Statement") and items["kw-us"].language == "en"
    assert items["kw-uk"].round == 12
    text = render_text(content)
    assert "U.S. Department of State (بالإنجليزية) ·" in text and "الدورة 12" in text and "الجولة 5" in text
    store.engine.dispose()


def test_built_english_digest_and_alert_keep_the_machine_contract(tmp_path: Path, db_url: str) -> None:
    config = _config(tmp_path, db_url, language="en", alert_language="en")
    store = open_store(config)
    _two_language_story(store)
    now = BASE + timedelta(hours=2)
    assert notify.queue_alerts(store, config, now=now) == 1
    built = notify.build_digest(store, config, config.digests[0], slot=now, now=now)
    assert built.stories == 1 and built.deliveries == 2
    with store.session() as session:
        rows = {(row.kind, row.channel_id): row.payload for row in session.exec(select(Delivery))}
    message = email.message_from_bytes(rows[("digest", "desk")], policy=email.policy.SMTP)
    assert message["Content-Language"] == "en" and str(message["Subject"]).startswith("Strategic Dialogues Digest — ")
    html = message.get_body(("html",)).get_content()
    assert elements(html).named("html")[0] == {"lang": "en", "dir": "ltr"}
    assert "Joint Statement on the Fifth U.S.-Kuwait Strategic Dialogue" in html and "كونا (Arabic)" in html
    data = json.loads(rows[("digest", "hook")])["data"]
    item = data["sections"][0]["items"][0]
    assert V1_ITEM_KEYS <= set(item) and item["topics"] == ["defense", "cyber"] and item["round"] == 5
    assert "كونا" in item["also_reported_by"] and "كونا (Arabic)" not in item["also_reported_by"]
    assert {"name": "كونا", "language": "ar"} in item["also_reported_outlets"]
    alert = json.loads(rows[("alert", "hook")])["data"]
    assert alert["story"]["headline"] == item["headline"] and alert["language"] == "en"
    assert alert["subject"].startswith("Alert — Kuwait–US Strategic Dialogue: ")
    store.engine.dispose()


def _statements(store: Store, run: Callable[[], object]) -> int:
    """How many SQL statements `run` sends."""
    from sqlalchemy import event

    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return len(seen)


def test_a_digest_costs_the_same_few_queries_whatever_its_size(tmp_path: Path, db_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, db_url, language="en")
    store = open_store(config)
    _two_language_story(store)
    digest, now = config.digests[0], BASE + timedelta(hours=2)
    one = _statements(store, lambda: notify.preview_digest(store, config, digest, now=now))
    for _ in range(7):
        _two_language_story(store)
    small = notify.preview_digest(store, config, digest, now=now)
    eight = _statements(store, lambda: notify.preview_digest(store, config, digest, now=now))
    assert eight == one  # not a query per story
    # Members loaded a few stories per query give the same items.
    monkeypatch.setattr(digest_items, "MEMBERS_PER_QUERY", 3)
    batched = notify.preview_digest(store, config, digest, now=now)
    assert batched.sections == small.sections and small.total == 8
    assert all(item.headline.startswith("Joint Statement") for item in small.sections[0].items)
    store.engine.dispose()
