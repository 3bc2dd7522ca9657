"""A second way to read a response httpx refuses for its Transfer-Encoding header.

Some servers (KUNA's among them, as another Kuwait monitor reports) send a Transfer-Encoding
that h11 rejects: "chunked, chunked", the header twice, "identity", or empty. h11 is right
to refuse: framing a message by a header it cannot read is how responses get smuggled. For a
client that reads one response and closes, there is a safe way round: ask again in HTTP/1.0,
where chunked framing does not exist and the body simply ends when the server closes the
connection. If the server still frames the body in chunks, the chunks are decoded strictly;
any other transfer coding is refused with its name. Bounded like the main path: headers at
most 64 KiB, the body at most `max_bytes` (compressed and decompressed), one deadline.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.sources import fetch as _fetch  # the bounded inflater and the error type

MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class RawResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case keys; repeated headers joined with ", "
    body: bytes  # transfer coding undone, content coding undone


async def get_http10(url: str, headers: dict[str, str], *, max_bytes: int, timeout: float) -> RawResponse:
    """GET `url` over HTTP/1.0 and read the response leniently but within bounds. Raises
    FetchFailed with a specific reason for anything it cannot read safely."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fetch.FetchFailed(f"invalid URL {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    context = ssl.create_default_context() if parts.scheme == "https" else None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            parts.hostname, port, ssl=context, server_hostname=parts.hostname if context else None, limit=MAX_HEADER_BYTES
        )
        try:
            lines = [f"GET {path} HTTP/1.0", f"Host: {parts.netloc.rsplit('@', 1)[-1]}", "Connection: close"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            status, reason, response_headers = await _read_head(reader)
            raw = await _read_to_close(reader, max_bytes)
        finally:
            writer.close()
    body = _undo_transfer_coding(raw, response_headers.get("transfer-encoding", ""), max_bytes)
    body = await _undo_content_coding(body, response_headers.get("content-encoding", ""), max_bytes)
    return RawResponse(status, reason, response_headers, body)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _fetch.FetchFailed(f"response headers larger than {MAX_HEADER_BYTES} bytes") from None
    except asyncio.IncompleteReadError:
        raise _fetch.FetchFailed("connection closed before the response headers ended") from None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise _fetch.FetchFailed(f"not an HTTP status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return int(fields[1]), fields[2] if len(fields) > 2 else "", headers


async def _read_to_close(reader: asyncio.StreamReader, max_bytes: int) -> bytes:
    chunks, size = [], 0
    while piece := await reader.read(256 * 1024):
        size += len(piece)
        if size > max_bytes:
            raise _fetch.FetchFailed(f"body exceeds max_bytes={max_bytes} while downloading")
        chunks.append(piece)
    return b"".join(chunks)


def _undo_transfer_coding(raw: bytes, header: str, max_bytes: int) -> bytes:
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return raw
    if any(c != "chunked" for c in codings):
        raise _fetch.FetchFailed(f"unsupported Transfer-Encoding {header!r}")
    if not _looks_chunked(raw):
        return raw  # an HTTP/1.0 answer that only names chunked: the body runs to the close
    return _dechunk(raw, max_bytes)


def _looks_chunked(raw: bytes) -> bool:
    size, sep, _ = raw.partition(b"\r\n")
    size = size.split(b";", 1)[0].strip()
    return bool(sep) and 0 < len(size) <= 16 and all(c in b"0123456789abcdefABCDEF" for c in size)


def _dechunk(raw: bytes, max_bytes: int) -> bytes:
    """Strict chunked decoding (RFC 9112 §7.1): a malformed chunk is an error, not a guess."""
    out, position, total = [], 0, 0
    while True:
        end = raw.find(b"\r\n", position)
        if end < 0:
            raise _fetch.FetchFailed("chunked body ended without its last chunk")
        size_text = raw[position:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _fetch.FetchFailed(f"malformed chunk size {size_text[:20]!r}") from None
        position = end + 2
        if size == 0:
            return b"".join(out)
        total += size
        if total > max_bytes:
            raise _fetch.FetchFailed(f"body exceeds max_bytes={max_bytes} while downloading")
        if raw[position + size : position + size + 2] != b"\r\n":
            raise _fetch.FetchFailed("malformed chunk: its data is not followed by CRLF")
        out.append(raw[position : position + size])
        position += size + 2


async def _undo_content_coding(body: bytes, header: str, max_bytes: int) -> bytes:
    encoding = header.strip().lower() or "identity"
    if encoding == "identity":
        return body

    async def once():  # the inflater reads an async stream of raw chunks
        yield body

    parts, size = [], 0
    async for piece in _fetch._decoded_chunks(once(), encoding, max_bytes):
        size += len(piece)
        if size > max_bytes:
            raise _fetch.FetchFailed(f"body exceeds max_bytes={max_bytes} after decompression")
        parts.append(piece)
    return b"".join(parts)
