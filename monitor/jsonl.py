"""The JSON Lines articles that `monitor classify` and `monitor cluster` read: one definition
of a valid line, so the two commands accept and reject the same input with the same error
line (`{"id": …, "line": n, "error": …}`, or `{"line": n, "error": …}` for invalid JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class InputError(Exception):
    """An input file that cannot be read: a usage error, said in one line."""


class BadLine(ValueError):
    """A line to report and skip; `named` when it parsed far enough to have an id field."""

    def __init__(self, problem: str, ident: Any = None, *, named: bool = False):
        super().__init__(problem)
        self.ident = ident
        self.named = named

    def error_line(self, number: int) -> str:
        payload = {"id": self.ident} if self.named else {}
        payload.update(line=number, error=str(self))
        return json.dumps(payload, ensure_ascii=False)


def read_article(line: str) -> dict[str, Any]:
    """The article object of one input line, or BadLine."""
    try:
        article = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(f"invalid JSON: {exc.msg}") from None
    problem = article_problem(article)
    if problem is not None:
        raise BadLine(problem, article.get("id") if isinstance(article, dict) else None, named=True)
    return article


def article_problem(article: Any) -> str | None:
    if not isinstance(article, dict):
        return "not a JSON object"
    if "id" not in article or not isinstance(article["id"], (str, int)) or isinstance(article["id"], bool):
        return "missing or invalid id"
    if not isinstance(article.get("title"), str):
        return "missing or invalid title"
    body = article.get("body", article.get("summary"))
    if body is not None and not isinstance(body, str):
        return "body/summary must be a string"
    if "body" not in article and "summary" not in article:
        return "missing body or summary"
    return None


def stream_lines(
    file: str,
    process: Callable[[Iterator[str]], Iterator[tuple[str | None, str | None]]],
    out: IO[str],
    err: IO[str],
) -> bool:
    """Stream JSON Lines from FILE (or stdin for "-") through `process`, one output line per
    input line, errors to `err`; True when any line was a problem.

    Lines are decoded here, one at a time, the same way from a file and from stdin: a line
    that is not UTF-8 is a bad line like any other (an error line naming it, the run goes
    on), and reaches `process` as a blank line so its line numbers stay right."""
    bad = False

    def lines(handle: IO[bytes]) -> Iterator[str]:
        nonlocal bad
        for number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                error = {"line": number, "error": f"not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})"}
                err.write(json.dumps(error, ensure_ascii=False) + "\n")
                bad = True
                yield ""

    with _open_input(file) as handle:
        for out_line, err_line in process(lines(handle)):
            if out_line is not None:
                out.write(out_line + "\n")
            if err_line is not None:
                err.write(err_line + "\n")
                bad = True
    out.flush()
    return bad


@contextmanager
def _open_input(file: str) -> Iterator[IO[bytes]]:
    if file == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = Path(file).open("rb")
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror or exc}") from None
    with handle:
        yield handle
