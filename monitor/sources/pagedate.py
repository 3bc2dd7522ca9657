"""An article page's publication date, from what the page states about itself.

The date fills a missing `published` of a sitemap or listing entry, so a wrong one would put
an old story in today's digest: only dates between 1995 (before any Kuwaiti daily was on the
web) and a day after the fetch count. Pages write dates many ways: ISO 8601 with or without
an offset (Arabic sites often "+03:00"), with nanoseconds, RFC 2822, slashes, Arabic-Indic
digits. A date without an offset is taken as UTC: guessing Kuwait time for every naive date
would be as often wrong. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)
_LONGEST = 64  # characters: no date is longer; longer values are not parsed at all
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)
_ISO = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)

# Meta names and properties that state publication, most specific first.
META_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "og:published_time",
    "published_time",
    "article.published",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "sailthru.date",
    "parsely-pub-date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "dcterms.date",
    "date",
)


def parse_page_date(value: str | None, fetched_at: datetime) -> datetime | None:
    """`value` as an aware UTC datetime, or None when it is no date or not a plausible one
    (before 1995, or more than a day after `fetched_at`)."""
    if not value:
        return None
    text = value.strip().translate(_DIGITS)
    if not text or len(text) > _LONGEST:
        return None
    parsed = _iso(text) or _rfc2822(text)
    if parsed is None:
        return None
    return parsed if plausible(parsed, fetched_at) else None


def plausible(moment: datetime, fetched_at: datetime) -> bool:
    latest = (fetched_at if fetched_at.tzinfo else fetched_at.replace(tzinfo=UTC)) + timedelta(days=1)
    return EARLIEST <= moment <= latest


def first_plausible(values: Iterable[str | None], fetched_at: datetime) -> datetime | None:
    """The first of `values` that is a plausible date: callers give them most trusted first."""
    for value in values:
        if (moment := parse_page_date(value, fetched_at)) is not None:
            return moment
    return None


def meta_dates(metas: Mapping[str, str]) -> list[str]:
    """Values of the page's date meta tags (keys lower-case), most specific first."""
    return [metas[key] for key in META_KEYS if metas.get(key)]


def _iso(text: str) -> datetime | None:
    match = _ISO.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro
        )
    except ValueError:
        return None
    offset = _offset(zone)
    if offset is None:
        return moment.replace(tzinfo=UTC)
    return (moment - offset).replace(tzinfo=UTC)


def _offset(zone: str | None) -> timedelta | None:
    if not zone or zone.upper() in ("Z", "UTC", "GMT"):
        return None
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 14 or minutes > 59:
        return None
    return sign * timedelta(hours=hours, minutes=minutes)


def _rfc2822(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
