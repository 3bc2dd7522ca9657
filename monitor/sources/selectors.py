"""CSS selectors of listing pages and article text, checked once when the config loads.

Lexbor (through selectolax) parses selectors lazily, at the first query: a typo in
`links = ".news-list a["` would otherwise surface as a failing poll hours later. Querying an
empty document makes Lexbor parse the selector now, so the config error names the key."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

_EMPTY = LexborHTMLParser("<html><body></body></html>")


def check_selector(selector: str) -> str | None:
    """None when `selector` is a CSS selector Lexbor accepts, else why it is not."""
    if not selector.strip():
        return "an empty CSS selector selects nothing"
    try:
        _EMPTY.css(selector)
    except SelectolaxError:
        return f"not a valid CSS selector: {selector!r}"
    return None
