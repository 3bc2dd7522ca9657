"""Time of html_to_text on hostile markup, against the previous regex pass in the same process.

An item's summary may be up to `[polling] max_bytes` (10 MB) of HTML. Patterns that made the
previous regexes quadratic: many unclosed embeds (`<object>` with no `</object>`), and many
"<" that start no tag ("< a < b", or "<a href" with no ">"). Each case is a unit repeated to
the size, timed once (CPU seconds of one call); the previous pass runs only up to
`--peer-max` bytes, as it takes minutes beyond.

    .venv/bin/python bench/html_bench.py [--sizes 100k,1m,10m] [--peer-max 100k]
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.sources.parse import html_to_text  # noqa: E402

CASES = {
    "paragraphs": "<p>الحوار الاستراتيجي بين الكويت والولايات المتحدة</p>",
    "unclosed <object>": "<object data=x>نص ",
    "unclosed <iframe>": "<iframe src=x>نص ",
    "self-closing <script/>": "<script/>نص ",
    "unclosed comment": "<!-- نص ",
    "'<' starting no tag": "< a < b <a",
    "tag without '>'": "<a href='x' ",
    "entities": "&amp;&#1575;&lt;p&gt; ",
}

# The previous pass (before #12's hardening), kept here only as the peer to measure against.
_OLD_DROPPED = re.compile(
    r"<(?:script|style|noscript|template|iframe|object)\b[^>]*/>"
    r"|<(script|style)\b[^>]*>.*?(?:</\1\s*>|\Z)"
    r"|<(noscript|template|iframe|object)\b[^>]*>(?:.*?</\2\s*>)?",
    re.IGNORECASE | re.DOTALL,
)
_OLD_COMMENTS = re.compile(r"<!--.*?(?:-->|\Z)|<!\[CDATA\[|\]\]>", re.DOTALL)
_OLD_BLOCKS = re.compile(r"</?(?:p|div|br|li|h[1-6]|table|tr|td|img)\b[^>]*>", re.IGNORECASE)
_OLD_TAGS = re.compile(r"</?[A-Za-z][^>]*>|<![A-Za-z][^>]*>|<\?[^>]*>")


def old_html_to_text(markup: str) -> str:
    text = _OLD_DROPPED.sub(" ", markup)
    text = _OLD_COMMENTS.sub(" ", text)
    text = _OLD_BLOCKS.sub(" ", text)
    return " ".join(html.unescape(_OLD_TAGS.sub("", text)).split())


def size(value: str) -> int:
    units = {"k": 1_000, "m": 1_000_000}
    return int(float(value[:-1]) * units[value[-1]]) if value[-1] in units else int(value)


def cpu_seconds(function, text: str) -> float:  # noqa: ANN001
    started = time.process_time()
    function(text)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m,10m")
    parser.add_argument("--peer-max", default="100k")
    args = parser.parse_args()
    sizes = [size(s) for s in args.sizes.split(",")]
    peer_max = size(args.peer_max)
    print(f"{'case':24s} {'bytes':>11s} {'now s':>8s} {'before s':>9s} {'ratio':>7s}")
    for name, unit in CASES.items():
        for total in sizes:
            text = unit * max(1, total // len(unit.encode()))
            now = cpu_seconds(html_to_text, text)
            before = cpu_seconds(old_html_to_text, text) if total <= peer_max else None
            peer = f"{before:9.3f} {before / max(now, 1e-6):7.1f}x" if before is not None else f"{'-':>9s} {'-':>7s}"
            print(f"{name:24s} {total:>11,d} {now:8.3f} {peer}")


if __name__ == "__main__":
    main()
