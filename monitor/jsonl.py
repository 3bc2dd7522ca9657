"""The JSON Lines articles that `monitor classify` and `monitor cluster` read: one definition
of a valid line, so the two commands accept and reject the same input with the same error
line (`{"id": …, "line": n, "error": …}`, or `{"line": n, "error": …}` for invalid JSON)."""

from __future__ import annotations

import json
from typing import Any


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
