"""Rendering of digests and alerts: the email (right-to-left Arabic or left-to-right English)
and the webhook JSON bodies.

Pure: the only I/O is loading Jinja2 templates. Everything taken from a feed (titles,
excerpts, source names, links) is untrusted, so the templates autoescape, highlights are
passed as text segments rather than pre-built markup, and only http(s) links become hrefs.
The view objects below hold display-ready values, so a template override (from a digest's
`template_dir`) is presentation only and cannot get escaping or link filtering wrong. The
words around the content come from the digest language's label table (monitor.digest_labels),
which the views carry to the templates.

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
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined, select_autoescape

from monitor.digest_labels import (
    ARABIC,
    CountForms,
    Labels,
    arabic_plural_category,
    aware,
    labels_for,
)

__all__ = ["CountForms", "arabic_plural_category", "aware"]  # re-exported: older imports use them from here

DIGEST_TITLE = ARABIC.digest_title
ALERT_TITLE = ARABIC.alert_title
NEWS = ARABIC.news
OTHER_NEWS = ARABIC.other_news
OTHER_OUTLETS = ARABIC.other_outlets
SUBJECT_HEADLINE_CHARS = 110
PAYLOAD_VERSION = 1
HTML_BUDGET_BYTES = 100_000  # Gmail clips past ~102 KB; below it with room for a relay's headers

# -- content (what notify hands over) --------------------------------------------------------


@dataclass(frozen=True)
class Outlet:
    """Another outlet that carried the story, and the language it wrote in ("ar", "en" or
    None when unknown), so the reader knows a write-up exists in the other language."""

    name: str
    language: str | None = None


@dataclass(frozen=True)
class DigestItem:
    """One story as the reader sees it: the article chosen for the digest's language (its
    headline, link, source and excerpt) plus what the rest of the story adds."""

    story_id: str
    headline: str
    url: str | None
    source: str
    published: datetime
    watch: str
    watch_title: str
    round: int | None
    topics: tuple[str, ...]  # topic ids ("defense"); the view shows them in the digest's language
    excerpt: str
    highlights: tuple[tuple[int, int], ...]  # [start, end) offsets into `excerpt`
    also_reported_by: tuple[Outlet, ...]
    more_outlets: int
    language: str = "ar"  # of the chosen article
    round_word: str = ""  # the framework's word for a round in the digest's language; "" = the default


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
    language: str = "ar"


# -- dates (Arabic; kept for callers of the single-language API) -----------------------------


def local_date_label(moment: datetime, tz: ZoneInfo) -> str:
    return ARABIC.date_label(moment, tz)


def local_time_label(moment: datetime, tz: ZoneInfo) -> str:
    return ARABIC.time_label(moment, tz)


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
    topics: tuple[str, ...]  # display names, without the "#"
    segments: tuple[Segment, ...]
    excerpt: str
    also_reported_by: tuple[str, ...]  # display names, other-language outlets marked
    more_outlets_label: str | None
    labels: Labels = ARABIC


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
    labels: Labels = ARABIC


@dataclass(frozen=True)
class AlertView:
    subject: str
    title: str
    watch_title: str
    generated_label: str
    timezone: str
    delivery_id: str
    item: ItemView
    labels: Labels = ARABIC


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


def partner_label(watch: str, labels: Labels = ARABIC) -> str | None:
    """The partner badge, from the watch id's last part ("kw-us" -> the United States)."""
    return labels.partner(watch)


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


def item_view(item: DigestItem, tz: ZoneInfo, labels: Labels = ARABIC) -> ItemView:
    more = labels.other_outlets.format(item.more_outlets) if item.more_outlets > 0 else None
    return ItemView(
        headline=one_line(item.headline) or labels.untitled,
        href=safe_href(item.url),
        source=labels.outlet(one_line(item.source), item.language),
        published_iso=aware(item.published).isoformat(),
        published_label=labels.time_label(item.published, tz),
        partner=labels.partner(item.watch),
        round_label=labels.round_label(item.round, item.round_word) if item.round is not None else None,
        topics=tuple(labels.topic(one_line(topic)) for topic in item.topics if topic.strip()),
        segments=highlight_segments(item.excerpt, item.highlights),
        excerpt=item.excerpt,
        also_reported_by=tuple(labels.outlet(one_line(outlet.name), outlet.language) for outlet in item.also_reported_by),
        more_outlets_label=more,
        labels=labels,
    )


def digest_subject(content: DigestContent) -> str:
    """e.g. "موجز الحوارات الاستراتيجية — 2026-11-22 — 7 أخبار" (local date of the digest)."""
    labels = labels_for(content.language)
    day = aware(content.generated_at).astimezone(ZoneInfo(content.timezone)).date().isoformat()
    return f"{labels.digest_title} — {day} — {labels.news.format(content.total)}"


def alert_subject(item: DigestItem, language: str = "ar") -> str:
    headline = one_line(item.headline)
    if len(headline) > SUBJECT_HEADLINE_CHARS:
        headline = headline[:SUBJECT_HEADLINE_CHARS].rsplit(" ", 1)[0] + " …"
    return f"{labels_for(language).alert_title} — {one_line(item.watch_title)}: {headline}"


def digest_view(content: DigestContent) -> DigestView:
    tz = ZoneInfo(content.timezone)
    labels = labels_for(content.language)
    sections = []
    for section in content.sections:
        if section.items:
            items = tuple(item_view(item, tz, labels) for item in section.items)
            entries = tuple(EntryView("full", item) for item in items)
            sections.append(SectionView(one_line(section.title), labels.news.format(len(items)), items, entries))
    return DigestView(
        subject=digest_subject(content),
        title=labels.digest_title,
        date_label=labels.date_label(content.generated_at, tz),
        count_label=labels.news.format(content.total),
        generated_label=labels.time_label(content.generated_at, tz),
        timezone=content.timezone,
        delivery_id=content.delivery_id,
        sections=tuple(sections),
        labels=labels,
    )


def alert_view(item: DigestItem, *, delivery_id: str, generated_at: datetime, timezone: str, language: str = "ar") -> AlertView:
    tz = ZoneInfo(timezone)
    labels = labels_for(language)
    return AlertView(
        subject=alert_subject(item, language),
        title=labels.alert_title,
        watch_title=one_line(item.watch_title),
        generated_label=labels.time_label(generated_at, tz),
        timezone=timezone,
        delivery_id=delivery_id,
        item=item_view(item, tz, labels),
        labels=labels,
    )


# -- templates -------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def template_environment(template_dir: Path | None = None) -> Environment:
    """Shipped templates, each overridable by a file of the same name in `template_dir`.
    `default_labels` (Arabic) is what a macro called by an older override without labels uses."""
    loaders: list[Any] = [PackageLoader("monitor", "templates")]
    if template_dir is not None:
        loaders.insert(0, FileSystemLoader(str(template_dir)))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.globals["default_labels"] = ARABIC
    return environment


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


def _message(subject: str, sender: str, recipients: Sequence[str], message_id: str, date: datetime, text: str, html: str,
             language: str = "ar") -> EmailMessage:
    """multipart/alternative, both parts base64 so no relay needs 8BITMIME; the email
    package RFC 2047-encodes the Arabic subject and display names."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = email.utils.format_datetime(aware(date))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    message["Content-Language"] = labels_for(language).lang  # after: set_content drops Content-* headers
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
        language=content.language,
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
    language: str = "ar",
) -> EmailMessage:
    delivery_id = message_id.strip("<>").split("@", 1)[0]
    view = alert_view(item, delivery_id=delivery_id, generated_at=generated_at, timezone=timezone, language=language)
    message = _message(
        view.subject,
        sender,
        recipients,
        message_id,
        generated_at,
        text=render_alert_text(view, template_dir),
        html=render_alert_html(view, template_dir),
        language=language,
    )
    message["X-Monitor-Alert"] = alert_id
    return message


# -- webhook payloads (schemas documented in docs/webhooks.md) -------------------------------


def item_payload(item: DigestItem, language: str = "ar") -> dict[str, Any]:
    """The keys of version 1 keep their meaning (`topics` are ids, `also_reported_by` names);
    the display forms in the digest's `language` are added beside them."""
    labels = labels_for(language)
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
        "also_reported_by": [outlet.name for outlet in item.also_reported_by],
        "more_outlets": item.more_outlets,
        "language": item.language,
        "round_label": labels.round_label(item.round, item.round_word) if item.round is not None else None,
        "topic_labels": [labels.topic(topic) for topic in item.topics],
        "also_reported_outlets": [{"name": outlet.name, "language": outlet.language} for outlet in item.also_reported_by],
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
                {
                    "watch": section.watch,
                    "title": section.title,
                    "items": [item_payload(item, content.language) for item in section.items],
                }
                for section in content.sections
            ],
            "language": content.language,
        },
    }


def alert_payload(item: DigestItem, *, alert_id: str, delivery_id: str, generated_at: datetime, language: str = "ar") -> dict[str, Any]:
    return {
        "type": "story.alert",
        "timestamp": aware(generated_at).isoformat(),
        "data": {
            "version": PAYLOAD_VERSION,
            "alert_id": alert_id,
            "delivery_id": delivery_id,
            "subject": alert_subject(item, language),
            "story": item_payload(item, language),
            "language": language,
        },
    }
