"""Bytes that do not match their charset: a few invalid bytes in a UTF-8 feed become U+FFFD
(never a whole feed in IBM855), a guess that makes Arabic unreadable loses to the declaration,
and whatever is still decoded against its declaration is said and marked suspect. Both parse
paths must agree on all of it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sources import charset
from monitor.sources.parse import ParsedFeed, parse_feed

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
ALANBA = (FEEDS / "rss20_alanba.xml").read_bytes()
FIRST_TITLE = "انطلاق أعمال الجولة السابعة من الحوار الاستراتيجي الكويتي - الأمريكي في واشنطن"
SECOND_TITLE = "مجموعة التوجيه المشتركة الكويتية - البريطانية تعقد اجتماعها في لندن"


def parse_both(body: bytes, headers: dict[str, str]) -> ParsedFeed:
    """The fast path's result, after checking that feedparser forced gives the same."""
    fast = parse_feed(body, headers, base_url="https://x.example/rss", fetched_at=NOW)
    assert fast == parse_feed(body, headers, base_url="https://x.example/rss", fetched_at=NOW, fast=False)
    return fast


def one_bad_byte(body: bytes = ALANBA, before: str = "الحوار", bad: bytes = b"\xff") -> bytes:
    at = body.index(before.encode())
    return body[:at] + bad + body[at:]


def undeclared(body: bytes) -> bytes:
    return body.replace(b'<?xml version="1.0" encoding="utf-8"?>', b'<?xml version="1.0"?>', 1)


@pytest.mark.parametrize(
    ("body", "headers", "how"),
    [
        (one_bad_byte(), {"content-type": "application/rss+xml; charset=utf-8"}, "declared as UTF-8"),
        (one_bad_byte(), {"content-type": "application/rss+xml"}, "declared as UTF-8"),
        (one_bad_byte(), {"content-type": "text/xml"}, "declared as UTF-8"),
        (undeclared(one_bad_byte()), {"content-type": "application/rss+xml"}, "detected as UTF-8"),
        (undeclared(one_bad_byte()), {}, "detected as UTF-8"),
        # A truncated Arabic letter (its second byte lost) rather than a stray byte.
        (one_bad_byte(bad="ا".encode()[:1]), {"content-type": "application/rss+xml; charset=utf-8"}, "declared"),
    ],
    ids=["header", "prolog", "text-xml", "undeclared", "no-headers", "truncated-letter"],
)
def test_one_bad_byte_is_one_replacement_character(body: bytes, headers: dict[str, str], how: str) -> None:
    feed = parse_both(body, headers)
    assert feed.error is None
    first, second, *others = feed.entries
    assert first.title == FIRST_TITLE.replace("الحوار", "\ufffdالحوار", 1)
    assert first.text_suspect
    assert second.title == SECOND_TITLE and not second.text_suspect
    assert not any(e.text_suspect for e in others) and len(others) == 2
    (warning,) = [w for w in feed.warnings if "U+FFFD" in w]
    assert warning.startswith("1 invalid UTF-8 byte (first at line 11, byte ")
    assert how in warning


def test_a_bad_byte_in_the_summary_marks_only_its_entry() -> None:
    feed = parse_both(one_bad_byte(before="الأرصاد الجوية"), {"content-type": "application/rss+xml; charset=utf-8"})
    assert [e.text_suspect for e in feed.entries] == [False, False, True, False]
    assert feed.entries[2].summary.count("\ufffd") == 1


def test_valid_feeds_are_untouched_and_unsuspected() -> None:
    for path in sorted(FEEDS.iterdir()):
        feed = parse_feed(path.read_bytes(), {}, base_url="https://x.example/", fetched_at=NOW)
        assert not any(e.text_suspect for e in feed.entries), path.name
        assert not any("U+FFFD" in w or "against the declared" in w for w in feed.warnings), path.name


def test_many_bad_bytes_still_read_as_arabic_not_as_a_guess() -> None:
    """Past "a few" invalid bytes the guess is heard, but a guess that reads less Arabic than
    UTF-8 with replacement characters loses to the declaration."""
    text = ALANBA.decode()
    damaged = "".join(ch + ("\udcff" if i % 4 == 0 and "\u0621" <= ch <= "\u064a" else "") for i, ch in enumerate(text))
    body = damaged.encode("utf-8", "surrogateescape")
    assert charset.prepare(body, {}).warning is not None
    feed = parse_both(body, {"content-type": "application/rss+xml; charset=utf-8"})
    assert all(e.text_suspect for e in feed.entries)
    assert feed.entries[1].title.replace("\ufffd", "") == SECOND_TITLE
    assert any("less Arabic readable" in w for w in feed.warnings)


def test_windows_1256_sent_as_utf8_is_read_but_said_and_suspect() -> None:
    """A publisher that labels windows-1256 bytes UTF-8: the guess reads more Arabic than the
    declaration, so it wins, but nothing is stored without a warning."""
    body = (FEEDS / "rss_cp1256_undeclared.xml").read_bytes()
    feed = parse_both(body, {"content-type": "application/rss+xml; charset=utf-8"})
    assert feed.entries[0].title.startswith("الخالد يبحث مع السفيرة الأمريكية")
    assert all(e.text_suspect for e in feed.entries)
    assert any("against the declared utf-8" in w for w in feed.warnings)


def test_a_prolog_charset_that_fits_is_no_guess() -> None:
    """Header says UTF-8, the XML prolog windows-1256, the bytes are windows-1256: feedparser
    reads them with the prolog's charset, a declaration, so nothing is suspect."""
    body = (FEEDS / "rss_cp1256_prolog.xml").read_bytes()
    feed = parse_both(body, {"content-type": "application/rss+xml; charset=utf-8"})
    assert feed.entries[0].title.startswith("الخالد يبحث مع السفيرة الأمريكية")
    assert not any(e.text_suspect for e in feed.entries)
    assert not any("U+FFFD" in w or "against the declared" in w for w in feed.warnings)
    assert charset.prepare(body, {"content-type": "application/rss+xml; charset=utf-8"}).body is body


def test_latin1_sent_as_utf8_keeps_its_accents_with_a_warning() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>Le Koweït et la France renforcent leur coopération économique</title>"
        "<link>https://x.example/1</link></item></channel></rss>"
    ).encode("latin-1")
    feed = parse_both(body, {"content-type": "application/rss+xml"})
    (entry,) = feed.entries
    assert "Koweït" in entry.title and entry.text_suspect
    assert any("against the declared utf-8" in w for w in feed.warnings)


def test_undeclared_windows_1256_is_detected_without_suspicion() -> None:
    feed = parse_both((FEEDS / "rss_cp1256_undeclared.xml").read_bytes(), {"content-type": "application/rss+xml"})
    assert feed.entries[0].title.startswith("الخالد يبحث")
    assert not any(e.text_suspect for e in feed.entries)


@pytest.mark.parametrize(
    ("used", "declared", "against"),
    [
        ("ascii", ("iso8859-1",), False),  # text/* without charset: ASCII, which every charset reads alike
        ("utf-8", ("ascii",), False),
        ("gb18030", ("gb2312",), False),  # feedparser reads GB2312 as its superset on purpose
        ("windows-1256", ("windows-1256",), False),
        ("IBM855", ("utf-8",), True),
        ("iso-8859-1", ("utf-8",), True),
        ("windows-1256", (), False),  # undeclared: detection is not against anything
    ],
)
def test_against_declaration(used: str, declared: tuple[str, ...], against: bool) -> None:
    decoded = charset.Decoded(b"", tuple(charset._codec(name) or name for name in declared))
    assert (charset.against_declaration(decoded, used) is not None) is against


def test_declarations_in_header_prolog_and_bom() -> None:
    body = b'\xef\xbb\xbf<?xml version="1.0" encoding="Windows-1256"?><rss/>'
    assert charset.declarations(body, {"content-type": "text/xml; charset=UTF8"}) == ("utf-8", "cp1256")
    assert charset.declarations(b'<?xml version="1.0" encoding="bogus"?>', {}) == ()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(ALANBA)), st.binary(min_size=1, max_size=3)),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([{"content-type": "application/rss+xml; charset=utf-8"}, {}, {"content-type": "text/xml"}]),
)
def test_damaged_bytes_anywhere_parse_alike_and_mark_what_they_garble(
    damage: list[tuple[int, bytes]], headers: dict[str, str]
) -> None:
    body = bytearray(ALANBA)
    for at, junk in sorted(damage, reverse=True):
        body[at:at] = junk
    feed = parse_both(bytes(body), headers)
    for entry in feed.entries:
        if "\ufffd" in entry.title + entry.summary and any("U+FFFD" in w for w in feed.warnings):
            assert entry.text_suspect
