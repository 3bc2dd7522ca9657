"""Canonical URLs: one article, one URL, whatever tracking parameters, hosts or AMP variants it wears."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_to_bytes, urlencode, urlsplit, urlunsplit

# -- URL canonicalisation -------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "ocid",
        "cmpid", "ref_src", "ref_url", "spm", "at_medium", "at_campaign", "xtor", "ito",
        "__twitter_impression", "s_cid", "wt.mc_id", "oly_enc_id", "oly_anon_id", "vero_id",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "hmb_")
# Query switches that only select the AMP rendering of the same page.
_AMP_PARAMS = {"amp": None, "outputtype": "amp", "output": "amp", "_amp": None}
_MOBILE_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")
_AMP_CACHE = re.compile(r"\.cdn\.ampproject\.org$")
# RFC 3986 characters that need no escaping inside a path segment.
_PATH_SAFE = "!$&'()*+,;=:@-._~"
_QUERY_SAFE = "!$'()*,;:@/?-._~"
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9!$&'()*+,;=:@._~-]*")  # letters, digits, _PATH_SAFE
# What most feeds link to: http(s), a lower-case host with no port or trailing dot, a path of
# plain segments, no query or fragment. Nothing in it needs urlsplit's general parsing.
_SIMPLE_URL = re.compile(r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)*)(/[A-Za-z0-9!$&'()*+,;=:@._~/-]*)?")


def canonical_url(url: str) -> str:
    """One spelling per page, so the same article reached by two links is stored once.

    The variants folded together are those feeds really produce: scheme/host case, `www.`
    and mobile/AMP hosts, default ports, http vs https, a trailing slash, fragments,
    tracking parameters, parameter order, AMP paths and switches, Google's AMP cache, and
    percent-encoded vs raw (or lower- vs upper-hex) non-ASCII paths. Path case is kept:
    servers may treat it as significant.
    """
    text = url.strip()
    simple = _SIMPLE_URL.fullmatch(text)
    if simple is not None and not simple.group(2).endswith(".cdn.ampproject.org"):
        # The general path below gives the same (a test compares): every article's URL
        # passes here, and urlsplit/urlunsplit were a third of its dedup features' cost.
        path = _strip_amp_path(simple.group(3) or "").rstrip("/")
        return f"https://{_strip_host_prefixes(simple.group(2))}{path}"
    return _canonical_url(text)


def _canonical_url(text: str) -> str:
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        return text
    scheme = parts.scheme.lower()
    if scheme == "http":
        scheme = "https"  # news sites serve the same page on both; https is what survives
    host, port = _host_and_port(parts)
    path = parts.path
    if _AMP_CACHE.search(host):
        return _amp_cache_origin(path) or text
    host = _strip_host_prefixes(host)
    path = _strip_amp_path(path)
    netloc = host if port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, _canonical_path(path), _canonical_query(parts.query), ""))


def _host_and_port(parts: Any) -> tuple[str, int | None]:
    host = (parts.hostname or "").rstrip(".")
    if host.isascii():
        host = host.lower()  # what the IDNA codec gives an ASCII name, at a tenth of the cost
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            host = host.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return host, port


def _strip_host_prefixes(host: str) -> str:
    for prefix in _MOBILE_HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            return host[len(prefix):]
    return host


def _amp_cache_origin(path: str) -> str | None:
    """`https://www-x-com.cdn.ampproject.org/c/s/www.x.com/a/amp` is `https://x.com/a`."""
    match = re.match(r"^/[a-z]/(s/)?(.+)$", path)
    if not match:
        return None
    return canonical_url(("https://" if match.group(1) else "http://") + match.group(2))


def _strip_amp_path(path: str) -> str:
    if path.startswith("/amp/"):
        path = path[4:]
    for suffix in ("/amp/", "/amp", ".amp"):
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)]
    return path


def _canonical_segment(segment: str, safe: str) -> str:
    if safe == _PATH_SAFE and _PLAIN_SEGMENT.fullmatch(segment):
        return segment  # nothing to unquote, nothing quote() would escape: most segments
    raw = unquote_to_bytes(segment)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8 (a legacy windows-1256 link): keep the bytes, only normalise hex case.
        return re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), segment)
    return quote(raw, safe=safe)


def _canonical_path(path: str) -> str:
    path = "/".join(_canonical_segment(segment, _PATH_SAFE) for segment in path.split("/"))
    path = path.rstrip("/")
    return path


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    kept = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        lowered = key.lower()
        if lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES):
            continue
        if lowered in _AMP_PARAMS and _AMP_PARAMS[lowered] in (None, value.lower()):
            continue
        kept.append((key, value))
    kept.sort()
    return urlencode(kept, quote_via=lambda s, safe="", *a: quote(s, safe=_QUERY_SAFE))
