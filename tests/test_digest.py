"""Digest and alert rendering: Arabic RTL email, inert untrusted values, webhook bodies, and
the HTML as a real browser (headless Chromium) lays it out."""

from __future__ import annotations

import email
import email.header
import email.policy
import json
import os
import shutil
import struct
import subprocess
import zlib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.digest import (
    DigestContent,
    DigestItem,
    DigestSection,
    Outlet,
    alert_payload,
    arabic_plural_category,
    digest_payload,
    digest_subject,
    highlight_segments,
    render_alert_email,
    render_email,
    render_html,
    safe_href,
)

REPO = Path(__file__).resolve().parent.parent
KUWAIT = timezone(timedelta(hours=3))
GENERATED = datetime(2026, 11, 22, 4, 30, tzinfo=timezone.utc)  # 07:30 in Kuwait
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_SKIP = "headless Chromium not installed (Debian package `chromium`; .ci/run installs it)"


# -- fixtures (written for these tests, not taken from the corpus) ---------------------------


def spans(text: str, *terms: str) -> tuple[tuple[int, int], ...]:
    """Highlight spans of each term's first occurrence, as the relevance engine reports them."""
    found = []
    for term in terms:
        start = text.index(term)
        found.append((start, start + len(term)))
    return tuple(sorted(found))


def make_item(**overrides: object) -> DigestItem:
    excerpt = (
        "واشنطن (كونا) — انطلقت اليوم أعمال الجولة السادسة من الحوار الاستراتيجي بين دولة الكويت "
        "والولايات المتحدة الأمريكية، وبحث الجانبان التعاون الدفاعي والأمن السيبراني والتبادل التجاري."
    )
    values: dict[str, object] = {
        "story_id": "s-us-6",
        "headline": "انطلاق الجولة السادسة من الحوار الاستراتيجي الكويتي الأمريكي في واشنطن",
        "url": "https://www.kuna.net.kw/ArticleDetails.aspx?id=1&language=ar",
        "source": "كونا",
        "published": datetime(2026, 11, 21, 9, 15, tzinfo=KUWAIT),
        "watch": "kw-us",
        "watch_title": "الحوار الاستراتيجي الكويتي الأمريكي",
        "round": 6,
        "topics": ("defense", "cyber"),
        "excerpt": excerpt,
        "highlights": spans(excerpt, "الحوار الاستراتيجي", "الولايات المتحدة"),
        "also_reported_by": (Outlet("القبس"), Outlet("الراي")),
        "more_outlets": 3,
    }
    values.update(overrides)
    return DigestItem(**values)  # type: ignore[arg-type]


def sample_items() -> list[DigestItem]:
    uk_excerpt = (
        "لندن — عقدت مجموعة التوجيه المشتركة الكويتية البريطانية اجتماعها الثاني عشر برئاسة "
        "نائب وزير الخارجية، وتناول الاجتماع التعليم والصحة والاستثمار."
    )
    cyber_excerpt = (
        "قال مسؤول في وزارة الخارجية الأمريكية إن الحوار الاستراتيجي مع الكويت سيخصص فريق عمل "
        "للأمن السيبراني وحماية البنية التحتية الحيوية."
    )
    return [
        make_item(),
        make_item(
            story_id="s-us-cyber",
            headline="مسؤول أمريكي: الحوار مع الكويت يشمل الأمن السيبراني",
            url="https://www.alqabas.com/article/2",
            excerpt=cyber_excerpt,
            highlights=spans(cyber_excerpt, "الحوار الاستراتيجي"),
            source="القبس",
            round=None,
            topics=("cyber",),
            also_reported_by=(),
            more_outlets=0,
        ),
        make_item(
            story_id="s-uk-12",
            headline="مجموعة التوجيه الكويتية البريطانية تعقد اجتماعها الثاني عشر في لندن",
            url="https://www.alraimedia.com/article/3",
            source="الراي",
            watch="kw-uk",
            watch_title="مجموعة التوجيه المشتركة الكويتية البريطانية",
            round=12,
            round_word="الدورة",  # the JSG numbers sessions, not rounds
            topics=("education", "health", "investment"),
            excerpt=uk_excerpt,
            highlights=spans(uk_excerpt, "مجموعة التوجيه المشتركة الكويتية البريطانية"),
            also_reported_by=(Outlet("الأنباء"),),
            more_outlets=0,
        ),
    ]


def make_content(items: list[DigestItem], delivery_id: str = "m_0123456789abcdef") -> DigestContent:
    sections = []
    for watch in dict.fromkeys(item.watch for item in items):
        chosen = tuple(item for item in items if item.watch == watch)
        sections.append(DigestSection(watch=watch, title=chosen[0].watch_title, items=chosen))
    return DigestContent(
        digest_id="daily",
        delivery_id=delivery_id,
        generated_at=GENERATED,
        timezone="Asia/Kuwait",
        sections=tuple(sections),
        total=len(items),
    )


def sample_content(delivery_id: str = "m_0123456789abcdef") -> DigestContent:
    return make_content(sample_items(), delivery_id)


def hostile_item() -> DigestItem:
    return make_item(
        story_id="s-evil",
        headline='<script>document.title="pwned"</script><img src=x onerror="document.title=1"> الحوار',
        url="javascript:document.title='pwned'",
        source='<b onmouseover="alert(1)">مصدر</b>',
        topics=("<svg onload=alert(1)>",),
        also_reported_by=(Outlet("<iframe src=javascript:alert(1)>"),),
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# -- a small HTML reader for assertions on structure, not on strings -------------------------


class Elements(HTMLParser):
    """Collects every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.marked: list[str] = []
        self._in_mark = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "mark":
            self._in_mark += 1
            self.marked.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._in_mark -= 1

    def handle_data(self, data: str) -> None:
        if self._in_mark:
            self.marked[-1] += data

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


# -- rendering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "category"),
    [(0, "zero"), (1, "one"), (2, "two"), (3, "few"), (10, "few"), (11, "many"), (99, "many"),
     (100, "other"), (102, "other"), (103, "few"), (111, "many")],
)
def test_arabic_plural_categories(n: int, category: str) -> None:
    assert arabic_plural_category(n) == category


def test_subject_uses_local_date_and_arabic_count_forms() -> None:
    items = sample_items()
    # 04:30 UTC on the 22nd is still the 22nd in Kuwait; 22:30 UTC is already the 23rd there.
    assert digest_subject(make_content(items)) == "موجز الحوارات الاستراتيجية — 2026-11-22 — 3 أخبار"
    late = DigestContent("daily", "m_x", datetime(2026, 11, 22, 22, 30, tzinfo=timezone.utc), "Asia/Kuwait", (), 0)
    assert digest_subject(late).split(" — ")[1] == "2026-11-23"
    seven = make_content([make_item(story_id=f"s{i}") for i in range(7)])
    assert digest_subject(seven).endswith("— 7 أخبار")
    assert digest_subject(make_content(items[:1])).endswith("— خبر واحد")
    assert digest_subject(make_content(items[:2])).endswith("— خبران")
    eleven = make_content([make_item(story_id=f"s{i}") for i in range(11)])
    assert digest_subject(eleven).endswith("— 11 خبرًا")


def test_email_is_multipart_alternative_with_encoded_arabic_subject() -> None:
    content = sample_content()
    message = render_email(content, "مرصد الحوارات <monitor@example.org>", ["desk@example.org", "b@example.org"], "<m_0123456789abcdef@dialogue-monitor>")
    raw = bytes(message)
    assert raw.isascii(), "every header and body part must be 7-bit on the wire"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0].lower(), "Subject/From must be RFC 2047 encoded-words"
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert str(parsed["Subject"]) == "موجز الحوارات الاستراتيجية — 2026-11-22 — 3 أخبار"
    decoded = "".join(
        chunk.decode(charset or "ascii") if isinstance(chunk, bytes) else chunk
        for chunk, charset in email.header.decode_header(message["Subject"].__str__())
    )
    assert decoded == digest_subject(content)
    assert parsed["Message-ID"] == "<m_0123456789abcdef@dialogue-monitor>"
    assert parsed["From"].addresses[0].display_name == "مرصد الحوارات"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["desk@example.org", "b@example.org"]
    assert parsed["Auto-Submitted"] == "auto-generated"
    text, html = parts(parsed)  # type: ignore[arg-type]
    for item in sample_items():
        assert item.headline in text and item.headline in html
        assert item.url in text
    assert "مجموعة التوجيه المشتركة الكويتية البريطانية" in text


def test_html_is_rtl_arabic_with_links_badges_highlights_and_sources() -> None:
    html = render_html(sample_content())
    found = elements(html)
    assert found.named("html")[0] == {"lang": "ar", "dir": "rtl"}
    assert found.named("body")[0]["dir"] == "rtl"
    assert not found.named("style") and not found.named("link"), "mail clients drop <style>; CSS must be inline"
    assert found.named("table"), "layout must use tables"
    hrefs = [attrs["href"] for attrs in found.named("a")]
    assert hrefs == [item.url for item in sample_items()]
    # Matched terms highlighted, exactly as the spans say.
    assert found.marked == ["الحوار الاستراتيجي", "الولايات المتحدة", "الحوار الاستراتيجي", "مجموعة التوجيه المشتركة الكويتية البريطانية"]
    for text in ("الولايات المتحدة", "المملكة المتحدة", "الجولة 6", "الدورة 12", "#دفاع", "#investment", "كونا"):
        assert text in html
    assert "أوردته أيضًا: القبس، الراي و3 مصادر أخرى" in html
    assert "21 نوفمبر 2026، 09:15" in html  # published at 09:15 Kuwait time, shown in the digest zone
    # Sections in the order given, each headed by its watch title.
    assert html.index("الحوار الاستراتيجي الكويتي الأمريكي</h2>".replace("</h2>", "")) < html.index("مجموعة التوجيه المشتركة الكويتية البريطانية <span")


def test_published_time_is_shown_in_the_digest_time_zone() -> None:
    london = DigestContent("daily", "m_x", GENERATED, "Europe/London", make_content([make_item()]).sections, 1)
    assert "21 نوفمبر 2026، 06:15" in render_html(london)  # 09:15 +03:00 is 06:15 GMT


def test_naive_times_are_taken_as_utc_not_host_local() -> None:
    naive = make_item(published=datetime(2026, 11, 21, 6, 15))
    content = DigestContent("daily", "m_x", GENERATED.replace(tzinfo=None), "Asia/Kuwait", make_content([naive]).sections, 1)
    assert "21 نوفمبر 2026، 09:15" in render_html(content)
    item = digest_payload(content)["data"]["sections"][0]["items"][0]
    assert datetime.fromisoformat(item["published"]) == datetime(2026, 11, 21, 6, 15, tzinfo=timezone.utc)


def test_script_in_title_and_javascript_link_render_inert() -> None:
    content = make_content([hostile_item()])
    html = render_html(content)
    found = elements(html)
    for tag in ("script", "img", "iframe", "svg", "b"):
        assert not found.named(tag), f"feed markup produced a <{tag}> element"
    assert all(not (name.startswith("on")) for _, attrs in found.tags for name in attrs)
    assert not found.named("a"), "a javascript: URL must not become a link"
    assert not any("javascript" in (value or "").lower() for _, attrs in found.tags for value in attrs.values())
    assert "&lt;script&gt;" in html  # shown as text, so the reader sees what the feed sent
    text, alt_html = parts(render_email(content, "m@example.org", ["d@example.org"], "<m_x@dialogue-monitor>"))
    assert "javascript:document" not in text and "javascript:document" not in alt_html


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
     "data:text/html,<script>alert(1)</script>", "vbscript:x", "//evil.example/x", "/relative", "https://", "http://a b"],
)
def test_only_absolute_http_links_are_emitted(url: str) -> None:
    assert safe_href(url) is None
    assert digest_payload(make_content([make_item(url=url)]))["data"]["sections"][0]["items"][0]["url"] is None


def test_bad_highlight_spans_are_ignored_not_trusted() -> None:
    text = "أبجد هوز حطي"
    segments = highlight_segments(text, [(5, 8), (0, 4), (2, 6), (9, 99), (3, 3)])
    assert "".join(segment.text for segment in segments) == text
    assert [segment.text for segment in segments if segment.marked] == ["أبجد", "هوز"]


def test_header_injection_through_a_headline_is_flattened() -> None:
    item = make_item(headline="خبر\r\nBcc: victim@example.org\r\n\r\nbody")
    message = render_alert_email(
        item, alert_id="urgent", sender="m@example.org", recipients=["d@example.org"],
        message_id="<a_1@dialogue-monitor>", generated_at=GENERATED, timezone="Asia/Kuwait",
    )
    parsed = email.message_from_bytes(bytes(message), policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "Bcc: victim@example.org" in str(parsed["Subject"])  # kept as harmless text on one line


def test_alert_email_carries_one_story() -> None:
    item = make_item()
    message = render_alert_email(
        item, alert_id="urgent", sender="m@example.org", recipients=["d@example.org"],
        message_id="<a_42@dialogue-monitor>", generated_at=GENERATED, timezone="Asia/Kuwait",
    )
    assert str(message["Subject"]) == f"تنبيه عاجل — {item.watch_title}: {item.headline}"
    assert message["Message-ID"] == "<a_42@dialogue-monitor>"
    text, html = parts(message)
    assert [a["href"] for a in elements(html).named("a")] == [item.url]
    assert "a_42" in text and item.headline in text
    assert elements(html).named("html")[0]["dir"] == "rtl"


def test_empty_digest_says_so() -> None:
    content = DigestContent("daily", "m_e", GENERATED, "Asia/Kuwait", (), 0)
    assert digest_subject(content).endswith("لا أخبار جديدة")
    html = render_html(content)
    assert "لم تُرصد أخبار جديدة" in html and not elements(html).named("a")


def test_template_dir_overrides_one_template_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "digest.txt").write_text("CUSTOM {{ digest.count_label }} {{ digest.sections[0].items[0].headline }}\n", encoding="utf-8")
    message = render_email(make_content([hostile_item()]), "m@example.org", ["d@example.org"], "<m@x>", template_dir=tmp_path)
    text, html = parts(message)
    assert text.startswith("CUSTOM خبر واحد <script>")  # plain text is not HTML-escaped
    assert "&lt;script&gt;" in html and not elements(html).named("script")  # shipped HTML still used


def test_override_with_any_other_extension_is_escaped(tmp_path: Path) -> None:
    (tmp_path / "digest.html").write_text("<p>{{ digest.sections[0].items[0].headline }}</p>", encoding="utf-8")
    html = render_html(make_content([hostile_item()]), template_dir=tmp_path)
    assert html.startswith("<p>&lt;script&gt;")


# -- webhook payloads ------------------------------------------------------------------------


def test_digest_payload_round_trips_as_utf8_json() -> None:
    content = sample_content()
    body = json.dumps(digest_payload(content), ensure_ascii=False).encode("utf-8")
    assert "الحوار".encode() in body  # not \\u escapes
    data = json.loads(body)
    assert data["type"] == "digest.published"
    assert datetime.fromisoformat(data["timestamp"]) == GENERATED
    assert data["data"]["delivery_id"] == content.delivery_id
    assert data["data"]["total"] == 3
    assert [s["watch"] for s in data["data"]["sections"]] == ["kw-us", "kw-uk"]
    first = data["data"]["sections"][0]["items"][0]
    item = sample_items()[0]
    assert first["headline"] == item.headline and first["round"] == 6
    assert [first["excerpt"][s:e] for s, e in first["highlights"]] == ["الحوار الاستراتيجي", "الولايات المتحدة"]
    assert datetime.fromisoformat(first["published"]) == item.published


def test_alert_payload_names_the_rule_and_the_delivery() -> None:
    data = alert_payload(make_item(), alert_id="urgent", delivery_id="a_7", generated_at=GENERATED)
    assert data["type"] == "story.alert"
    assert data["data"]["alert_id"] == "urgent" and data["data"]["delivery_id"] == "a_7"
    assert data["data"]["story"]["story_id"] == "s-us-6"


def test_webhook_docs_example_matches_the_payload_shape() -> None:
    doc = (REPO / "docs" / "webhooks.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in doc.split("```json\n")[1:]]
    examples = [json.loads(block) for block in blocks]
    digest_example = next(e for e in examples if e["type"] == "digest.published")
    alert_example = next(e for e in examples if e["type"] == "story.alert")
    real_digest = digest_payload(sample_content())
    real_alert = alert_payload(make_item(), alert_id="urgent", delivery_id="a_7", generated_at=GENERATED)
    assert keys(digest_example) == keys(real_digest)
    assert keys(alert_example) == keys(real_alert)


def keys(value: object, prefix: str = "") -> set[str]:
    """Every key path in a JSON value (lists collapsed), to compare documented and real shapes."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            found.add(prefix + key)
            found |= keys(inner, prefix + key + ".")
    elif isinstance(value, list):
        for inner in value:
            found |= keys(inner, prefix + "[].")
    return found


# -- in a real browser -----------------------------------------------------------------------

PROBE = """
<script>
document.body.setAttribute("data-direction", getComputedStyle(document.body).direction);
document.body.setAttribute("data-scripts", String(document.scripts.length));
document.body.setAttribute("data-title", document.title);
var js = Array.from(document.links).filter(function (a) { return a.protocol !== "http:" && a.protocol !== "https:"; });
document.body.setAttribute("data-unsafe-links", String(js.length));
var first = document.querySelector("a");
if (first) {
  var box = first.getBoundingClientRect();
  document.body.setAttribute("data-first-link-right", String(Math.round(box.right)));
  document.body.setAttribute("data-width", String(document.documentElement.clientWidth));
}
</script>
"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={profile}",
    ]
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90, check=False)


def probed_dom(html: str, tmp_path: Path) -> dict[str, str]:
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    body = next(attrs for name, attrs in elements(result.stdout).tags if name == "body")
    return {key[5:]: value or "" for key, value in body.items() if key.startswith("data-")}


@pytest.mark.skipif(CHROMIUM is None, reason=CHROMIUM_SKIP)
def test_chromium_lays_the_digest_out_right_to_left(tmp_path: Path) -> None:
    dom = probed_dom(render_html(sample_content()), tmp_path)
    assert dom["direction"] == "rtl"
    assert dom["title"] == digest_subject(sample_content())
    assert dom["unsafe-links"] == "0"
    # In an RTL layout the headline starts at the right edge, not the left.
    assert int(dom["first-link-right"]) > int(dom["width"]) // 2


@pytest.mark.skipif(CHROMIUM is None, reason=CHROMIUM_SKIP)
def test_chromium_runs_no_feed_script(tmp_path: Path) -> None:
    html = render_html(make_content([hostile_item()]))
    dom = probed_dom(html, tmp_path)
    assert dom["scripts"] == "1", "only the test's own probe script may exist"
    assert dom["title"] != "pwned" and "pwned" not in dom["title"]
    assert dom["unsafe-links"] == "0"


@pytest.mark.skipif(CHROMIUM is None, reason=CHROMIUM_SKIP)
def test_chromium_screenshot_at_phone_width(tmp_path: Path) -> None:
    """Renders the digest at a phone's width. MONITOR_UPDATE_SCREENSHOT=1 also refreshes
    docs/digest-example.png, the picture the README shows."""
    page = tmp_path / "digest.html"
    page.write_text(render_html(sample_content()), encoding="utf-8")
    shot = tmp_path / "digest.png"
    result = chromium(f"--screenshot={shot}", "--window-size=480,1300", page.as_uri(), profile=tmp_path / "profile-shot")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, height, distinct = png_summary(shot.read_bytes())
    assert (width, height) == (480, 1300)
    assert distinct > 50, "a blank or single-colour screenshot means nothing was rendered"
    if os.environ.get("MONITOR_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "digest-example.png")


def png_summary(data: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the pixel rows (a cheap
    "something was drawn" signal without an imaging library)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = b""
    offset = 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"IDAT":
            idat += data[offset + 8:offset + 8 + length]
        offset += 12 + length
    return width, height, len(set(zlib.decompress(idat)))
