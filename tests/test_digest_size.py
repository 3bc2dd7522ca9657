"""Digest size: Gmail clips an email past ~102 KB, so a digest's HTML stays under 100 KB whatever
the number of stories (full cards, then compact lines, then links, at worst a count), while the
plain-text part and the webhook payload carry every story in full."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import select

from monitor import notify
from monitor.daemon import open_store
from monitor.digest import (
    HTML_BUDGET_BYTES,
    DigestItem,
    Outlet,
    digest_payload,
    render_email,
    render_html,
    render_text,
)
from monitor.digest_fit import FitRules, Tier, brief_headline, plan_tiers, priority_order
from monitor.models import Article, Delivery, Story
from tests.conftest import make_config
from tests.test_digest import CHROMIUM, CHROMIUM_SKIP, chromium, elements, make_content, make_item

UTC = timezone.utc

# Invented, deliberately long Arabic: a headline of ~150 characters and a full 420-character excerpt.
HEADLINE = (
    "مصادر دبلوماسية: الجولة المقبلة من الحوار الاستراتيجي بين الكويت والولايات المتحدة "
    "تبحث ملفات الدفاع والأمن السيبراني والطاقة والاستثمار والتعليم العالي"
)
EXCERPT = (
    "قالت مصادر دبلوماسية مطلعة إن الجولة المقبلة من الحوار الاستراتيجي بين دولة الكويت والولايات "
    "المتحدة الأمريكية ستتناول التعاون الدفاعي وتبادل المعلومات الأمنية وحماية البنية التحتية الحيوية "
    "من الهجمات السيبرانية، إلى جانب ملفات الطاقة المتجددة والاستثمار المشترك والمنح الدراسية للطلبة "
    "الكويتيين في الجامعات الأمريكية، مشيرة إلى أن فرق العمل المتخصصة عقدت اجتماعات تحضيرية عدة خلال "
    "الأسابيع الماضية تمهيدًا لانعقاد الجولة في العاصمة الأمريكية واشنطن …"
)
# What an Arabic news site's article address often looks like: a percent-encoded Arabic slug.
ARABIC_SLUG = "/%D8%A7%D9%84%D8%AD%D9%88%D8%A7%D8%B1-%D8%A7%D9%84%D8%A7%D8%B3%D8%AA%D8%B1%D8%A7%D8%AA%D9%8A%D8%AC%D9%8A"


def long_item(i: int, *, watch: str = "kw-us", slug: str = "") -> DigestItem:
    start = EXCERPT.index("الحوار الاستراتيجي")
    uk = watch == "kw-uk"
    return make_item(
        story_id=f"s{i}",
        headline=f"{HEADLINE} ({i})",
        url=f"https://www.example-news.com/article/{5_900_000 + i}{slug}",
        excerpt=EXCERPT,
        highlights=((start, start + len("الحوار الاستراتيجي")),),
        watch=watch,
        watch_title="مجموعة التوجيه المشتركة الكويتية البريطانية" if uk else "الحوار الاستراتيجي الكويتي الأمريكي",
        also_reported_by=tuple(Outlet(name) for name in ("القبس", "الراي", "الأنباء", "الجريدة")),
        more_outlets=7,
    )


def long_digest(count: int, *, uk_every: int = 4, slug: str = "") -> list[DigestItem]:
    """`count` stories, one in `uk_every` on the UK watch, grouped by watch as notify groups them."""
    items = [long_item(i, watch="kw-uk" if i % uk_every == 0 else "kw-us", slug=slug) for i in range(count)]
    return [item for item in items if item.watch == "kw-us"] + [item for item in items if item.watch == "kw-uk"]


def size(html: str) -> int:
    """As the mail reader gets it: UTF-8 with CRLF line ends (what the email part carries)."""
    return len(html.replace("\r\n", "\n").encode("utf-8")) + html.replace("\r\n", "\n").count("\n")


def hrefs(html: str) -> list[str]:
    return [attrs["href"] or "" for attrs in elements(html).named("a")]


def full_cards(html: str) -> int:
    return html.count("<mark ")  # one highlight per full card in these fixtures


# -- the HTML under budget, every link in order ----------------------------------------------


@pytest.mark.parametrize("count", [200, 1000])
def test_long_digest_html_stays_under_100_kb_with_every_link_in_order(count: int) -> None:
    items = long_digest(count)
    content = make_content(items)
    html = render_html(content)
    assert size(html) <= HTML_BUDGET_BYTES <= 100_000
    assert hrefs(html) == [item.url for item in items], "every story's link, in the digest's order"
    assert full_cards(html) >= 3, "the first stories stay full cards"
    # The run of links is headed by a count in Arabic, after the stories shown above it.
    assert re.search(r"\d+ (خبرًا آخر|أخبار أخرى|خبر آخر):", html)
    assert "تعذّر عرض" not in html, "nothing left out when every link fits"


def test_both_sections_keep_full_cards_not_only_the_first_watch() -> None:
    items = long_digest(200)
    html = render_html(make_content(items))
    us, uk = html.split("مجموعة التوجيه المشتركة الكويتية البريطانية <span", 1)
    assert full_cards(us) >= 2 and full_cards(uk) >= 2


def test_two_hundred_stories_use_every_tier_and_the_budget() -> None:
    html = render_html(make_content(long_digest(200)))
    assert full_cards(html) >= 8
    assert html.count('padding:4px 20px 6px') >= 20, "compact entries between the cards and the links"
    assert html.count(" …</a>") >= 20, "linked headlines cut at a word boundary in the list of links"
    assert size(html) > 0.9 * HTML_BUDGET_BYTES, "the room is used, not wasted"


def test_a_short_digest_is_all_full_cards_as_before() -> None:
    items = long_digest(12)
    html = render_html(make_content(items))
    assert full_cards(html) == 12 and "padding:4px 20px 6px" not in html
    assert hrefs(html) == [item.url for item in items]


def test_when_even_links_do_not_fit_the_rest_is_counted_and_order_kept() -> None:
    items = long_digest(1000, slug=ARABIC_SLUG)  # ~170-byte addresses: 1,000 links cannot fit
    html = render_html(make_content(items))
    assert size(html) <= HTML_BUDGET_BYTES
    shown = hrefs(html)
    assert 300 < len(shown) < len(items)
    us = [item.url for item in items if item.watch == "kw-us"]
    uk = [item.url for item in items if item.watch == "kw-uk"]
    shown_us = [url for url in shown if url in set(us)]
    shown_uk = [url for url in shown if url in set(uk)]
    assert shown == shown_us + shown_uk
    assert shown_us == us[: len(shown_us)] and shown_uk == uk[: len(shown_uk)], "each section shows its first stories"
    left_us, left_uk = len(us) - len(shown_us), len(uk) - len(shown_uk)
    notes = re.findall(r"تعذّر عرض (\d+) (?:خبرًا آخر|خبر آخر|أخبار أخرى) هنا", html)
    assert sorted(int(n) for n in notes) == sorted(n for n in (left_us, left_uk) if n)


def test_the_plain_text_and_the_webhook_payload_stay_complete() -> None:
    items = long_digest(200)
    content = make_content(items)
    message = render_email(content, "m@example.org", ["d@example.org"], "<m_size@dialogue-monitor>")
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert size(html) <= HTML_BUDGET_BYTES
    assert text.replace("\r\n", "\n") == render_text(content)
    assert all(item.url in text for item in items) and text.count(EXCERPT) == 200
    payload = digest_payload(content)
    carried = [entry for section in payload["data"]["sections"] for entry in section["items"]]
    assert [entry["url"] for entry in carried] == [item.url for item in items]
    assert all(entry["excerpt"] == EXCERPT for entry in carried)


# -- hostile sizes ---------------------------------------------------------------------------


def test_one_huge_story_does_not_push_the_others_out() -> None:
    items = long_digest(60)
    huge = make_item(story_id="huge", headline="خبر " * 60_000, url="https://x.example/" + "a" * 50_000)
    items.insert(1, huge)
    html = render_html(make_content(items))
    assert size(html) <= HTML_BUDGET_BYTES
    shown = hrefs(html)
    assert shown == [item.url for item in items if item is not huge]
    assert "تعذّر عرض خبر آخر هنا" in html, "the story whose address alone is 50 KB is only counted"
    assert full_cards(html) >= 10, "the stories after the huge one still get cards"


def test_template_override_of_the_card_is_measured_and_fitted(tmp_path: Path) -> None:
    card = (Path(__file__).resolve().parent.parent / "monitor" / "templates" / "_item.html").read_text(encoding="utf-8")
    padded = card.replace("</table>", "<!--" + "x" * 4000 + "--></table>", 1)  # a 7 KB card
    (tmp_path / "_item.html").write_text(padded, encoding="utf-8")
    items = long_digest(200)
    html = render_html(make_content(items), template_dir=tmp_path)
    assert size(html) <= HTML_BUDGET_BYTES and "x" * 4000 in html
    assert hrefs(html) == [item.url for item in items]


def test_an_older_override_without_entries_still_renders_every_story(tmp_path: Path) -> None:
    (tmp_path / "digest.html").write_text(
        "{% for s in digest.sections %}{% for i in s.items %}<p>{{ i.headline }}</p>{% endfor %}{% endfor %}",
        encoding="utf-8",
    )
    items = long_digest(1000)
    html = render_html(make_content(items), template_dir=tmp_path)
    assert html.count("<p>") == 1000  # over budget, and logged, but nothing breaks or disappears


# -- the planner alone -----------------------------------------------------------------------


def test_priority_order_interleaves_sections_by_rank() -> None:
    assert priority_order([3, 1, 2]) == [0, 3, 4, 1, 5, 2]
    assert priority_order([]) == []


UNIFORM = {Tier.FULL: 3000, Tier.COMPACT: 500, Tier.BRIEF: 200, Tier.BARE: 80}


def predicted(tiers: list[Tier], base: int, note: int, sections: list[int]) -> int:
    total = base - UNIFORM[Tier.BARE] * len(tiers)
    total += sum(UNIFORM[t] for t in tiers if t != Tier.OMITTED)
    start = 0
    for count in sections:
        total += note if Tier.OMITTED in tiers[start : start + count] else 0
        start += count
    return total


@pytest.mark.parametrize("count", [0, 1, 5, 30, 200, 1000, 5000])
def test_planned_tiers_fit_and_only_get_poorer_down_each_section(count: int) -> None:
    sections = [count - count // 3, count // 3]
    base = 3000 + UNIFORM[Tier.BARE] * count
    tiers = plan_tiers(sections, lambda i, t: UNIFORM[t], base=base, omitted_note=300, rules=FitRules(budget=98_000))
    assert len(tiers) == count
    assert predicted(tiers, base, 300, sections) <= 98_000
    start = 0
    for n in sections:
        part = tiers[start : start + n]
        assert part == sorted(part), "with equal sizes each section goes full, compact, brief, bare, omitted"
        start += n
    if count >= 3:
        assert tiers[0] == Tier.FULL and tiers[sections[0]] == Tier.FULL


def test_planner_leaves_out_only_what_cannot_fit() -> None:
    tiers = plan_tiers([2000], lambda i, t: UNIFORM[t], base=2000 * 80 + 3000, omitted_note=300,
                       rules=FitRules(budget=98_000))
    kept = [t for t in tiers if t != Tier.OMITTED]
    assert tiers[: len(kept)] == kept, "only the last stories are left out"
    assert len(kept) == (98_000 - 3000 - 300 - 3 * (3000 - 80)) // 80


def test_brief_headline_cuts_at_a_word() -> None:
    assert brief_headline("قصير") == "قصير"
    cut = brief_headline(HEADLINE)
    assert cut.endswith(" …") and HEADLINE.startswith(cut[:-2]) and len(cut) <= 42


# -- through the outbox, as the daemon builds it ---------------------------------------------


def test_built_digest_of_200_stories_fits_and_the_webhook_carries_all(tmp_path: Path, db_url: str) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = """
[[feeds]]
id = "kuna"
name = "كونا"
url = "http://127.0.0.1:9/kuna.xml"

[[channels]]
id = "desk"
type = "email"
host = "127.0.0.1"
port = 9
security = "none"
from = "monitor@example.org"
to = ["desk@example.org"]

[[channels]]
id = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "HOOK_SECRET"

[[digests]]
id = "daily"
at = "07:30"
watches = ["kw-us", "kw-uk"]
channels = ["desk", "hook"]
"""
    config = make_config(tmp_path, body, db_url=db_url, environ={"HOOK_SECRET": secret})
    store = open_store(config)
    now = datetime.now(UTC)
    links = []
    with store.session() as session:
        for i in range(200):
            watch = "kw-uk" if i % 4 == 0 else "kw-us"
            story = Story(key=f"k{i}", first_seen_at=now, watch=watch, round=6, flagged_at=now - timedelta(seconds=200 - i), score=9.0)
            session.add(story)
            session.flush()
            link = f"https://www.example-news.com/article/{i}"
            links.append((watch, link))
            decision = {"flagged": True, "watch": watch, "score": 9.0, "round": 6, "topics": ["defense"], "matches": []}
            article = Article(feed_id="kuna", guid=f"g{i}", link=link, title=f"{HEADLINE} ({i})", summary=EXCERPT * 2,
                              fingerprint=os.urandom(8).hex(), published_at=now, first_seen_at=now, flagged=True,
                              watch=watch, score=9.0, round=6, decision=json.dumps(decision), rules_fingerprint="t",
                              story_id=story.id)
            session.add(article)
            session.flush()
            story.headline_article_id = article.id
            session.add(story)
        session.commit()
    built = notify.build_digest(store, config, config.digests[0], slot=now)
    assert (built.stories, built.deliveries) == (200, 2)
    with store.session() as session:
        payloads = {row.channel_id: row.payload for row in session.exec(select(Delivery))}
    store.engine.dispose()
    message = email.message_from_bytes(payloads["desk"], policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    in_order = [link for watch in ("kw-us", "kw-uk") for w, link in links if w == watch]
    assert size(html) <= HTML_BUDGET_BYTES
    assert hrefs(html) == in_order
    assert all(link in text for _, link in links)
    hook = json.loads(payloads["hook"])
    assert [item["url"] for section in hook["data"]["sections"] for item in section["items"]] == in_order


# -- in a real browser -----------------------------------------------------------------------

LAYOUT_PROBE = """
<script>
var root = document.documentElement;
document.body.setAttribute("data-direction", getComputedStyle(document.body).direction);
document.body.setAttribute("data-links", String(document.links.length));
document.body.setAttribute("data-overflow", String(root.scrollWidth - root.clientWidth));
</script>
"""


@pytest.mark.skipif(CHROMIUM is None, reason=CHROMIUM_SKIP)
def test_chromium_lays_a_long_digest_out_right_to_left_without_overflow(tmp_path: Path) -> None:
    """At a phone's width, the runs of links wrap instead of widening the page."""
    page = tmp_path / "long.html"
    page.write_text(render_html(make_content(long_digest(1000))).replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    result = chromium("--window-size=420,2000", "--dump-dom", page.as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    body = next(attrs for name, attrs in elements(result.stdout).tags if name == "body")
    assert body["data-direction"] == "rtl"
    assert body["data-links"] == "1000"
    assert int(body["data-overflow"] or "0") <= 0, "the page must not scroll sideways"
