"""A readable title from an article URL's slug, for entries that come without one.

A sitemap without the Google News extension, or a listing link that is only an image, gives
a URL and nothing else; yet Arabic and English news sites write the headline into the path
(`/2025/11/12/الكويت-وواشنطن-تعقدان-الحوار-الاستراتيجي.html`). Reading it back gives the
rules something to match before the article page is fetched, and the digest something better
than a bare URL. Pure: no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# Beyond this a "slug" is an encoded blob, not a headline; the bound also keeps the work per
# URL constant whatever a hostile sitemap sends.
_MAX_PATH = 2048
_MAX_TITLE = 300
# The path of an absolute URL (what safe_link returns): urlsplit costs more than the rest.
_PATH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*([^?#]*)")
_EXTENSION = re.compile(r"\.(?:s?html?|php\d?|aspx?|jsp|cms|cfm|xml|amp)\Z", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
_SEPARATORS = re.compile(r"[-_+.~،,;|\s]+")
# Numeric ids ("1301245"), dates ("20251112"), hashes ("a8f3c9e2"): three digits or more in
# a token that has no more than a few letters around them.
_ID_LIKE = re.compile(r"\A[^\W\d_]{0,3}\d[\w]*\Z")
# Path segments that name a section or a page kind, never a headline.
_GENERIC = frozenset(
    {
        "amp", "article", "articles", "details", "detail", "default", "index", "item", "news",
        "node", "page", "post", "posts", "read", "show", "story", "stories", "view", "ar", "en",
        "home", "content", "category", "section", "tag", "print", "mobile",
    }
)  # fmt: skip


def title_from_url(url: str) -> str:
    """The headline a URL's path spells out, or "" when no segment holds words.

    The last segment with two words or more wins (the slug usually comes last, sometimes
    before a trailing id); a single word counts only in the last segment and only when it is
    not a section name, so `/news/details/1301245` gives "" rather than "details"."""
    match = _PATH.match(url)
    path = match.group(1)[:_MAX_PATH] if match else ""
    segments = [segment for segment in path.split("/") if segment]
    for position, segment in enumerate(reversed(segments)):
        words = _words(segment)
        if len(words) >= 2 or (position == 0 and len(words) == 1 and _meaningful_word(words[0])):
            return _readable(" ".join(words))
    return ""


def _words(segment: str) -> list[str]:
    text = unquote(segment, errors="replace")
    text = _EXTENSION.sub("", text)
    return [token for token in _SEPARATORS.split(text) if _is_word(token)]


def _is_word(token: str) -> bool:
    if not _LETTER.search(token):
        return False
    return not (_ID_LIKE.match(token) and sum(char.isdigit() for char in token) >= 3)


def _meaningful_word(word: str) -> bool:
    return len(word) >= 4 and word.lower() not in _GENERIC


def _readable(title: str) -> str:
    title = title[:_MAX_TITLE].strip()
    if title[:1].isascii() and title[:1].islower():
        title = title[0].upper() + title[1:]
    return title
