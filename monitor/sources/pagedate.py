"""What an article page states about itself: its publication date above all, and the meta
tags and schema.org JSON-LD that the date, the title and the language are read from.

The date fills a missing `published` of a sitemap or listing entry, so a wrong one would put
an old story in today's digest: only dates between 1995 (before any Kuwaiti daily was on the
web) and a day after the fetch count. Pages write dates many ways: ISO 8601 with or without
an offset (Arabic sites often "+03:00"), with nanoseconds, RFC 2822, slashes, Arabic-Indic
digits. A date without an offset is taken as UTC: guessing Kuwait time for every naive date
would be as often wrong. JSON-LD blocks over `MAX_JSON_LD_CHARS` are skipped and the walk
through their data visits at most `MAX_JSON_LD_NODES` values. Pure: no I/O.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from selectolax.lexbor import LexborHTMLParser

MAX_JSON_LD_CHARS = 1_000_000  # per script block; a whole article is ~50 KB
MAX_JSON_LD_NODES = 50_000  # dicts and lists visited across the page's JSON-LD
ARTICLE_TYPES = frozenset(
    {
        "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle",
        "backgroundnewsarticle", "opinionnewsarticle", "reviewnewsarticle", "blogposting",
        "socialmediaposting", "report", "scholarlyarticle", "techarticle", "liveblogposting",
    }
)  # fmt: skip
_SITE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ", " » ")
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8}){0,3}")
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


# -- what the page states --------------------------------------------------------------------


@dataclass(frozen=True)
class PageFacts:
    """The page's meta tags (first content per lower-case property/name/itemprop) and the
    objects its JSON-LD types as an article, in page order."""

    metas: Mapping[str, str]
    articles: tuple[Mapping[str, Any], ...]


def read_facts(tree: LexborHTMLParser) -> PageFacts:
    return PageFacts(_metas(tree), tuple(_json_ld_articles(tree)))


def page_title(tree: LexborHTMLParser, facts: PageFacts) -> str | None:
    """og:title, JSON-LD headline, <h1>, <title>: the first present, without the site's
    name around a separator ("Headline | Al-Rai") when the page names its site."""
    candidates = [facts.metas.get("og:title"), next(_ld_strings(facts, "headline"), None)]
    for selector in ("h1", "title"):
        node = tree.css_first(selector)
        candidates.append(node.text(deep=True) if node is not None else None)
    for candidate in candidates:
        title = " ".join(html.unescape(candidate or "").split())[:1000]
        if title:
            return _without_site_name(title, _site_names(facts)) or title
    return None


def page_published(tree: LexborHTMLParser, facts: PageFacts, fetched_at: datetime) -> datetime | None:
    return first_plausible(_date_candidates(tree, facts), fetched_at)


def page_language(tree: LexborHTMLParser, facts: PageFacts, headers: Mapping[str, str]) -> str | None:
    """<html lang>, og:locale, JSON-LD inLanguage, Content-Language: the first that is a
    language tag, lower case with hyphens ("ar_KW" becomes "ar-kw")."""
    root = tree.css_first("html")
    attributes = root.attributes if root is not None else {}
    candidates = [attributes.get("lang"), attributes.get("xml:lang"), facts.metas.get("og:locale")]
    candidates.extend(_ld_strings(facts, "inLanguage"))
    candidates.append((headers.get("content-language") or "").split(",")[0])
    for candidate in candidates:
        tag = (candidate or "").strip().replace("_", "-").lower()
        if _LANGUAGE_TAG.fullmatch(tag):
            return tag
    return None


def json_ld_bodies(facts: PageFacts) -> list[str]:
    """Every articleBody (or text) of the page's JSON-LD articles, as the page wrote them."""
    bodies = (article.get(key) for article in facts.articles for key in ("articleBody", "text"))
    return [body for body in bodies if isinstance(body, str)]


def _metas(tree: LexborHTMLParser) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.css("meta")[:2000]:
        attributes = node.attributes
        content = attributes.get("content")
        if not content:
            continue
        for key in ("property", "name", "itemprop"):
            name = (attributes.get(key) or "").strip().lower()
            if name and name not in found:
                found[name] = content.strip()
    return found


def _json_ld_articles(tree: LexborHTMLParser) -> Iterator[Mapping[str, Any]]:
    budget = [MAX_JSON_LD_NODES]
    for script in tree.css("script[type]")[:500]:
        kind = (script.attributes.get("type") or "").split(";", 1)[0].strip().lower()
        if kind != "application/ld+json":
            continue
        raw = script.text(deep=True)
        if len(raw) <= MAX_JSON_LD_CHARS and (data := _loads(raw)) is not None:
            yield from _article_objects(data, budget)


def _loads(raw: str) -> Any:
    """The block's data, or None when it is no JSON. Raw newlines inside strings are common
    in articleBody, hence not strict."""
    raw = raw.strip()
    for wrapper in ("<!--", "//<![CDATA[", "<![CDATA["):
        raw = raw.removeprefix(wrapper)
    for wrapper in ("-->", "//]]>", "]]>"):
        raw = raw.removesuffix(wrapper)
    try:
        return json.loads(raw, strict=False)
    except (ValueError, RecursionError):
        return None


def _article_objects(data: Any, budget: list[int]) -> Iterator[dict[str, Any]]:
    """Objects typed as an article, anywhere in the data (@graph, lists, mainEntity): a walk
    with its own stack, bounded by a node budget shared across the page's blocks."""
    stack = [data]
    while stack and budget[0] > 0:
        budget[0] -= 1
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            kinds = item.get("@type")
            kinds = kinds if isinstance(kinds, list) else [kinds]
            if any(isinstance(kind, str) and kind.rsplit("/", 1)[-1].lower() in ARTICLE_TYPES for kind in kinds):
                yield item
            stack.extend(reversed([value for value in item.values() if isinstance(value, list | dict)]))


def _ld_strings(facts: PageFacts, key: str) -> Iterator[str]:
    for article in facts.articles:
        value = article.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, dict):
            value = value.get("name") or value.get("alternateName") or value.get("@value")
        if isinstance(value, str) and value.strip():
            yield value.strip()


def _site_names(facts: PageFacts) -> set[str]:
    names = {facts.metas.get("og:site_name"), facts.metas.get("application-name")}
    for article in facts.articles:
        publisher = article.get("publisher")
        if isinstance(publisher, dict):
            names.add(publisher.get("name") if isinstance(publisher.get("name"), str) else None)
    return {" ".join(name.split()) for name in names if name}


def _without_site_name(title: str, sites: set[str]) -> str:
    for site in sites:
        for separator in _SITE_SEPARATORS:
            title = title.removesuffix(separator + site).removeprefix(site + separator)
    return title.strip()


def _date_candidates(tree: LexborHTMLParser, facts: PageFacts) -> Iterator[str | None]:
    yield from _ld_strings(facts, "datePublished")
    yield from meta_dates(facts.metas)
    for node in tree.css('[itemprop="datePublished"]')[:20]:
        yield node.attributes.get("content") or node.attributes.get("datetime") or node.text(deep=True)[:100]
    for node in tree.css("time[datetime]")[:20]:
        yield node.attributes.get("datetime")
    yield from _ld_strings(facts, "dateCreated")
