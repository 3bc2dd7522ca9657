"""URL canonicalisation: every spelling of one page maps to one key, different pages stay apart."""

from __future__ import annotations

import re
import string
from urllib.parse import quote, unquote_to_bytes, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.dedup import canonical_url, urls

SAME_PAGE = [
    # scheme and host case, www., default ports, http vs https
    ("HTTPS://WWW.Alanba.com.kw/1071536", "https://alanba.com.kw/1071536"),
    ("http://alanba.com.kw:80/1071536", "https://alanba.com.kw/1071536"),
    ("https://alanba.com.kw:443/1071536", "https://alanba.com.kw/1071536"),
    ("https://alanba.com.kw./1071536", "https://alanba.com.kw/1071536"),
    # trailing slash and fragment
    ("https://alseyassah.com/article/96310/", "https://alseyassah.com/article/96310"),
    ("https://alseyassah.com/article/96310#comments", "https://alseyassah.com/article/96310"),
    ("https://alseyassah.com/", "https://alseyassah.com"),
    # tracking parameters
    (
        "https://www.annaharkw.com/Article.aspx?id=1046725&utm_source=twitter&utm_medium=social",
        "https://annaharkw.com/Article.aspx?id=1046725",
    ),
    ("https://aawsat.com/home/article/1642871?fbclid=IwAR0abc", "https://aawsat.com/home/article/1642871"),
    ("https://aawsat.com/home/article/1642871?gclid=xyz&UTM_Campaign=a", "https://aawsat.com/home/article/1642871"),
    # parameter order
    (
        "https://www.kuna.net.kw/ArticleDetails.aspx?language=ar&id=3195468",
        "https://kuna.net.kw/ArticleDetails.aspx?id=3195468&language=ar",
    ),
    # AMP and mobile variants
    ("https://m.alraimedia.com/article/1547218", "https://alraimedia.com/article/1547218"),
    ("https://www.alraimedia.com/amp/article/1547218", "https://alraimedia.com/article/1547218"),
    ("https://www.aljarida.com/article/20314/amp", "https://aljarida.com/article/20314"),
    ("https://www.aljarida.com/article/20314?amp=1", "https://aljarida.com/article/20314"),
    ("https://www.aljarida.com/article/20314?outputType=amp", "https://aljarida.com/article/20314"),
    (
        "https://www-alarabiya-net.cdn.ampproject.org/c/s/www.alarabiya.net/gulf/2021/07/29/blinken/amp",
        "https://alarabiya.net/gulf/2021/07/29/blinken",
    ),
    # percent-encoded and raw Arabic paths, lower- and upper-case hex
    ("https://www.alqabas.com/article/الحوار-الاستراتيجي", "https://alqabas.com/article/%D8%A7%D9%84%D8%AD%D9%88%D8%A7%D8%B1-%D8%A7%D9%84%D8%A7%D8%B3%D8%AA%D8%B1%D8%A7%D8%AA%D9%8A%D8%AC%D9%8A"),
    ("https://alqabas.com/article/%d8%a7%d9%84%d8%ad%d9%88%d8%a7%d8%b1", "https://alqabas.com/article/%D8%A7%D9%84%D8%AD%D9%88%D8%A7%D8%B1"),
    # query values: raw Arabic, percent-encoded and '+' for space
    ("https://news.example/search?q=الكويت+بريطانيا", "https://news.example/search?q=%D8%A7%D9%84%D9%83%D9%88%D9%8A%D8%AA%20%D8%A8%D8%B1%D9%8A%D8%B7%D8%A7%D9%86%D9%8A%D8%A7"),
]


@pytest.mark.parametrize(("variant", "canonical"), SAME_PAGE)
def test_variants_of_one_page_have_one_canonical_form(variant: str, canonical: str) -> None:
    assert canonical_url(variant) == canonical


@pytest.mark.parametrize(("variant", "canonical"), SAME_PAGE)
def test_canonical_form_is_a_fixed_point(variant: str, canonical: str) -> None:
    assert canonical_url(canonical_url(variant)) == canonical_url(variant)


def test_raw_and_encoded_arabic_path_compare_equal() -> None:
    raw = "https://www.alqabas.com/article/الكويت-والمملكة-المتحدة/"
    encoded = "https://alqabas.com/article/%D8%A7%D9%84%D9%83%D9%88%D9%8A%D8%AA-%D9%88%D8%A7%D9%84%D9%85%D9%85%D9%84%D9%83%D8%A9-%D8%A7%D9%84%D9%85%D8%AA%D8%AD%D8%AF%D8%A9"
    assert canonical_url(raw) == canonical_url(encoded)


DIFFERENT_PAGES = [
    ("https://www.kuna.net.kw/ArticleDetails.aspx?id=3195468", "https://www.kuna.net.kw/ArticleDetails.aspx?id=3195469"),
    ("https://alseyassah.com/article/96310", "https://alseyassah.com/Article/96310"),  # path case kept
    ("https://elaph.com/Web/News/2021/09/1447802.html", "https://elaph.com/Web/News/2021/09/1447803.html"),
    ("https://alanba.com.kw/1071536", "https://alanba.com/1071536"),
    ("https://example.com/a%2Fb", "https://example.com/a/b"),  # an encoded slash is data, not a separator
    ("https://example.com:8443/a", "https://example.com/a"),  # non-default port kept
    ("https://example.com/news?page=2", "https://example.com/news?page=3"),
]


@pytest.mark.parametrize(("left", "right"), DIFFERENT_PAGES)
def test_different_pages_stay_different(left: str, right: str) -> None:
    assert canonical_url(left) != canonical_url(right)


def test_non_utf8_percent_encoding_is_kept_with_normalised_hex() -> None:
    # windows-1256 bytes for «كويت», as some legacy Arabic sites still link
    assert canonical_url("https://old.example/%df%e6%ed%ca") == "https://old.example/%DF%E6%ED%CA"


@pytest.mark.parametrize("text", ["", "not a url", "/relative/path", "mailto:desk@example.com"])
def test_strings_that_are_not_absolute_urls_are_returned_stripped(text: str) -> None:
    assert canonical_url(f"  {text} ") == text


# -- the shortcuts for plain segments and ASCII hosts give what the general path gives ----------

def _general_segment(segment: str) -> str:
    raw = unquote_to_bytes(segment)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), segment)
    return quote(raw, safe=urls._PATH_SAFE)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "!$&'()*+,;=:@._~-%?#[]\"<>\\^`{|} كويتé", max_size=16))
def test_a_path_segment_is_canonicalised_as_by_the_general_path(segment: str) -> None:
    assert urls._canonical_segment(segment, urls._PATH_SAFE) == _general_segment(segment)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + ".-", min_size=1, max_size=70))
def test_an_ascii_host_is_lowered_as_the_idna_codec_would(host: str) -> None:
    parts = urlsplit(f"https://{host}/a")
    name = (parts.hostname or "").rstrip(".")
    try:
        expected = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        expected = name.lower()
    assert urls._host_and_port(parts)[0] == expected


_HOST_LABELS = st.sampled_from(
    ["www", "m", "amp", "mobile", "kuna", "net", "kw", "x-y", "9", "A", "cdn.ampproject.org", "org", ""]
)
_PATH_PIECES = st.sampled_from(
    ["/", "/c/s/", "amp", "/amp", ".amp", "/amp/", "a", "2026", "x.html", "~", "%D9", "?", "#", "é", ":80", "-", "@"]
)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    st.lists(_HOST_LABELS, min_size=1, max_size=4),
    st.lists(_PATH_PIECES, max_size=6),
)
def test_a_simple_url_is_canonicalised_as_by_the_general_path(scheme: str, labels: list[str], path: list[str]) -> None:
    # canonical_url answers the commonest shape (http(s), lower-case host, plain path) without
    # urlsplit: built from parts on and around that shape's edges, both must agree.
    url = f"{scheme}://{'.'.join(labels)}{''.join(path)}"
    assert urls.canonical_url(url) == urls._canonical_url(url)
