"""Rendering of digests and alerts: Arabic, right-to-left email and the webhook JSON bodies.

Pure: the only I/O is loading Jinja2 templates. Everything taken from a feed (titles,
excerpts, source names, links) is untrusted, so the templates autoescape, highlights are
passed as text segments rather than pre-built markup, and only http(s) links become hrefs.
The view objects below hold display-ready values, so a template override (from a digest's
`template_dir`) is presentation only and cannot get escaping or link filtering wrong.

A digest's HTML is kept under HTML_BUDGET_BYTES (Gmail clips longer messages): past what fits,
stories become compact entries, then links, and at worst are counted (see digest_fit); the
plain-text part and the webhook payload always carry every story in full.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined, select_autoescape

DIGEST_TITLE = "موجز الحوارات الاستراتيجية"
ALERT_TITLE = "تنبيه عاجل"
SUBJECT_HEADLINE_CHARS = 110
PAYLOAD_VERSION = 1
HTML_BUDGET_BYTES = 100_000  # Gmail clips past ~102 KB; below it with room for a relay's headers

# -- content (what notify hands over) --------------------------------------------------------


@dataclass(frozen=True)
class DigestItem:
    """One story as the reader sees it: its headline article plus what the story adds."""

    story_id: str
    headline: str
    url: str | None
    source: str
    published: datetime
    watch: str
    watch_title: str
    round: int | None
    topics: tuple[str, ...]
    excerpt: str
    highlights: tuple[tuple[int, int], ...]  # [start, end) offsets into `excerpt`
    also_reported_by: tuple[str, ...]
    more_outlets: int


@dataclass(frozen=True)
class DigestSection:
    watch: str
    title: str
    items: tuple[DigestItem, ...]


@dataclass(frozen=True)
class DigestContent:
    digest_id: str
    delivery_id: str
    generated_at: datetime
    timezone: str
    sections: tuple[DigestSection, ...]
    total: int


# -- Arabic counting -------------------------------------------------------------------------


@dataclass(frozen=True)
class CountForms:
    """The six CLDR plural forms of Arabic; `{n}` is replaced by the number."""

    zero: str
    one: str
    two: str
    few: str
    many: str
    other: str

    def format(self, n: int) -> str:
        return getattr(self, arabic_plural_category(n)).format(n=n)


NEWS = CountForms(zero="لا أخبار جديدة", one="خبر واحد", two="خبران", few="{n} أخبار", many="{n} خبرًا", other="{n} خبر")
OTHER_NEWS = CountForms(
    zero="", one="خبر آخر", two="خبران آخران", few="{n} أخبار أخرى", many="{n} خبرًا آخر", other="{n} خبر آخر"
)
OTHER_OUTLETS = CountForms(
    zero="", one="مصدر آخر", two="مصدران آخران", few="{n} مصادر أخرى", many="{n} مصدرًا آخر", other="{n} مصدر آخر"
)


def arabic_plural_category(n: int) -> str:
    """CLDR plural rules for Arabic: 3–10 take the plural, 11–99 the accusative singular."""
    if n == 0:
        return "zero"
    if n == 1:
        return "one"
    if n == 2:
        return "two"
    if 3 <= n % 100 <= 10:
        return "few"
    if 11 <= n % 100 <= 99:
        return "many"
    return "other"


# -- dates -----------------------------------------------------------------------------------

_MONTHS = ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر")
_WEEKDAYS = ("الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد")


def aware(moment: datetime) -> datetime:
    """Naive datetimes are UTC here (what SQLite hands back); never the host's local zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt_timezone.utc)


def local_date_label(moment: datetime, tz: ZoneInfo) -> str:
    local = aware(moment).astimezone(tz)
    return f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"


def local_time_label(moment: datetime, tz: ZoneInfo) -> str:
    local = aware(moment).astimezone(tz)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}، {local:%H:%M}"


# -- view objects (display-ready values for the templates) -----------------------------------


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool


@dataclass(frozen=True)
class ItemView:
    headline: str
    href: str | None
    source: str
    published_iso: str
    published_label: str
    partner: str | None
    round_label: str | None
    topics: tuple[str, ...]
    segments: tuple[Segment, ...]
    excerpt: str
    also_reported_by: tuple[str, ...]
    more_outlets_label: str | None


@dataclass(frozen=True)
class LinkView:
    """One story in a section's list of links: its headline's first words, or its number."""

    number: int
    text: str
    href: str | None


@dataclass(frozen=True)
class EntryView:
    """What a section shows, in order: a story as a "full" card or a "compact" line, or a run
    of consecutive stories as "links" (headed by `label`, e.g. "87 خبرًا آخر")."""

    kind: str
    item: ItemView | None = None
    links: tuple[LinkView, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class SectionView:
    title: str
    count_label: str
    items: tuple[ItemView, ...]  # every story in full (the plain text; older template overrides)
    entries: tuple[EntryView, ...] = ()  # what the HTML shows, sized to fit
    omitted_label: str | None = None  # stories left out of the HTML, e.g. "3 أخبار أخرى"


@dataclass(frozen=True)
class DigestView:
    subject: str
    title: str
    date_label: str
    count_label: str
    generated_label: str
    timezone: str
    delivery_id: str
    sections: tuple[SectionView, ...]


@dataclass(frozen=True)
class AlertView:
    subject: str
    title: str
    watch_title: str
    generated_label: str
    timezone: str
    delivery_id: str
    item: ItemView


_PARTNERS = {"us": "الولايات المتحدة", "usa": "الولايات المتحدة", "uk": "المملكة المتحدة", "gb": "المملكة المتحدة"}
_SPACE = re.compile(r"\s+")


def safe_href(url: str | None) -> str | None:
    """The URL if a reader can safely follow it: absolute http(s), no spaces or control
    characters (browsers drop tabs and newlines, so "java\\tscript:" would still run)."""
    if not url:
        return None
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    lowered = url.lower()
    if not (lowered.startswith("http://") or lowered.startswith("https://")) or len(url) <= len("https://"):
        return None
    return url


def one_line(text: str) -> str:
    """Collapse feed whitespace; a header with a line break would be a header injection."""
    return _SPACE.sub(" ", text).strip()


def partner_label(watch: str) -> str | None:
    """The partner badge, from the watch id's last part ("kw-us" -> the United States)."""
    return _PARTNERS.get(watch.rsplit("-", 1)[-1].lower())


def highlight_segments(excerpt: str, highlights: Sequence[tuple[int, int]]) -> tuple[Segment, ...]:
    """Split the excerpt into plain and matched runs; out-of-range or overlapping spans are
    dropped rather than trusted, because they come from stored decisions."""
    segments: list[Segment] = []
    cursor = 0
    for start, end in sorted(highlights):
        if start < cursor or end <= start or end > len(excerpt):
            continue
        if start > cursor:
            segments.append(Segment(excerpt[cursor:start], marked=False))
        segments.append(Segment(excerpt[start:end], marked=True))
        cursor = end
    if cursor < len(excerpt):
        segments.append(Segment(excerpt[cursor:], marked=False))
    return tuple(segments)


def item_view(item: DigestItem, tz: ZoneInfo) -> ItemView:
    more = OTHER_OUTLETS.format(item.more_outlets) if item.more_outlets > 0 else None
    return ItemView(
        headline=one_line(item.headline) or "(بلا عنوان)",
        href=safe_href(item.url),
        source=one_line(item.source),
        published_iso=aware(item.published).isoformat(),
        published_label=local_time_label(item.published, tz),
        partner=partner_label(item.watch),
        round_label=f"الجولة {item.round}" if item.round is not None else None,
        topics=tuple(one_line(topic) for topic in item.topics if topic.strip()),
        segments=highlight_segments(item.excerpt, item.highlights),
        excerpt=item.excerpt,
        also_reported_by=tuple(one_line(name) for name in item.also_reported_by),
        more_outlets_label=more,
    )


def digest_subject(content: DigestContent) -> str:
    """e.g. "موجز الحوارات الاستراتيجية — 2026-11-22 — 7 أخبار" (local date of the digest)."""
    day = aware(content.generated_at).astimezone(ZoneInfo(content.timezone)).date().isoformat()
    return f"{DIGEST_TITLE} — {day} — {NEWS.format(content.total)}"


def alert_subject(item: DigestItem) -> str:
    headline = one_line(item.headline)
    if len(headline) > SUBJECT_HEADLINE_CHARS:
        headline = headline[:SUBJECT_HEADLINE_CHARS].rsplit(" ", 1)[0] + " …"
    return f"{ALERT_TITLE} — {one_line(item.watch_title)}: {headline}"


def digest_view(content: DigestContent) -> DigestView:
    tz = ZoneInfo(content.timezone)
    sections = []
    for section in content.sections:
        if section.items:
            items = tuple(item_view(item, tz) for item in section.items)
            entries = tuple(EntryView("full", item) for item in items)
            sections.append(SectionView(one_line(section.title), NEWS.format(len(items)), items, entries))
    return DigestView(
        subject=digest_subject(content),
        title=DIGEST_TITLE,
        date_label=local_date_label(content.generated_at, tz),
        count_label=NEWS.format(content.total),
        generated_label=local_time_label(content.generated_at, tz),
        timezone=content.timezone,
        delivery_id=content.delivery_id,
        sections=tuple(sections),
    )


def alert_view(item: DigestItem, *, delivery_id: str, generated_at: datetime, timezone: str) -> AlertView:
    tz = ZoneInfo(timezone)
    return AlertView(
        subject=alert_subject(item),
        title=ALERT_TITLE,
        watch_title=one_line(item.watch_title),
        generated_label=local_time_label(generated_at, tz),
        timezone=timezone,
        delivery_id=delivery_id,
        item=item_view(item, tz),
    )


# -- templates -------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def template_environment(template_dir: Path | None = None) -> Environment:
    """Shipped templates, each overridable by a file of the same name in `template_dir`."""
    loaders: list[Any] = [PackageLoader("monitor", "templates")]
    if template_dir is not None:
        loaders.insert(0, FileSystemLoader(str(template_dir)))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(name: str, template_dir: Path | None, **context: object) -> str:
    return template_environment(template_dir).get_template(name).render(**context)


def render_html(content: DigestContent, template_dir: Path | None = None, budget: int = HTML_BUDGET_BYTES) -> str:
    from monitor.digest_fit import fitted_html  # digest_fit builds on this module's views

    return fitted_html(digest_view(content), template_dir, budget)


def render_text(content: DigestContent, template_dir: Path | None = None) -> str:
    return _render("digest.txt", template_dir, digest=digest_view(content))


def render_alert_html(view: AlertView, template_dir: Path | None = None) -> str:
    return _render("alert.html", template_dir, alert=view)


def render_alert_text(view: AlertView, template_dir: Path | None = None) -> str:
    return _render("alert.txt", template_dir, alert=view)


# -- email -----------------------------------------------------------------------------------


def _message(subject: str, sender: str, recipients: Sequence[str], message_id: str, date: datetime, text: str, html: str) -> EmailMessage:
    """multipart/alternative, both parts base64 so no relay needs 8BITMIME; the email
    package RFC 2047-encodes the Arabic subject and display names."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = email.utils.format_datetime(aware(date))
    message["Message-ID"] = message_id
    message["Content-Language"] = "ar"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return message


def render_email(
    content: DigestContent,
    sender: str,
    recipients: Sequence[str],
    message_id: str,
    template_dir: Path | None = None,
) -> EmailMessage:
    from monitor.digest_fit import fitted_html

    view = digest_view(content)
    return _message(
        view.subject,
        sender,
        recipients,
        message_id,
        content.generated_at,
        text=_render("digest.txt", template_dir, digest=view),
        html=fitted_html(view, template_dir),
    )


def render_alert_email(
    item: DigestItem,
    *,
    alert_id: str,
    sender: str,
    recipients: Sequence[str],
    message_id: str,
    generated_at: datetime,
    timezone: str,
    template_dir: Path | None = None,
) -> EmailMessage:
    delivery_id = message_id.strip("<>").split("@", 1)[0]
    view = alert_view(item, delivery_id=delivery_id, generated_at=generated_at, timezone=timezone)
    message = _message(
        view.subject,
        sender,
        recipients,
        message_id,
        generated_at,
        text=render_alert_text(view, template_dir),
        html=render_alert_html(view, template_dir),
    )
    message["X-Monitor-Alert"] = alert_id
    return message


# -- webhook payloads (schemas documented in docs/webhooks.md) -------------------------------


def item_payload(item: DigestItem) -> dict[str, Any]:
    return {
        "story_id": item.story_id,
        "headline": item.headline,
        "url": safe_href(item.url),
        "source": item.source,
        "published": aware(item.published).isoformat(),
        "watch": item.watch,
        "watch_title": item.watch_title,
        "round": item.round,
        "topics": list(item.topics),
        "excerpt": item.excerpt,
        "highlights": [[start, end] for start, end in item.highlights],
        "also_reported_by": list(item.also_reported_by),
        "more_outlets": item.more_outlets,
    }


def digest_payload(content: DigestContent) -> dict[str, Any]:
    """Standard Webhooks' recommended envelope: type, timestamp, data."""
    return {
        "type": "digest.published",
        "timestamp": aware(content.generated_at).isoformat(),
        "data": {
            "version": PAYLOAD_VERSION,
            "digest_id": content.digest_id,
            "delivery_id": content.delivery_id,
            "subject": digest_subject(content),
            "timezone": content.timezone,
            "total": content.total,
            "sections": [
                {"watch": section.watch, "title": section.title, "items": [item_payload(item) for item in section.items]}
                for section in content.sections
            ],
        },
    }


def alert_payload(item: DigestItem, *, alert_id: str, delivery_id: str, generated_at: datetime) -> dict[str, Any]:
    return {
        "type": "story.alert",
        "timestamp": aware(generated_at).isoformat(),
        "data": {
            "version": PAYLOAD_VERSION,
            "alert_id": alert_id,
            "delivery_id": delivery_id,
            "subject": alert_subject(item),
            "story": item_payload(item),
        },
    }
