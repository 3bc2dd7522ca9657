"""The rule sections as typed configuration, and the decisions the engine returns.

These are what crosses module boundaries (config loading, the store, the CLI contract),
so they are plain pydantic models and frozen dataclasses with no matching logic in them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Bump when matching semantics change, so stored decisions are recomputed.
ENGINE_VERSION = "3"  # 3: English ordinals before the noun, English plurals, "US" in capitals, ~N gaps

FieldName = Literal["title", "body"]


class RulesError(ValueError):
    """A rule that cannot be compiled, with the TOML key path of the culprit."""

    def __init__(self, key_path: str, message: str):
        super().__init__(message)
        self.key_path = key_path

    def __str__(self) -> str:
        return f"{self.key_path}: {self.args[0]}"


# -- configuration models (TOML sections, keys exactly as written) ---------------------------


class ClauseConfig(BaseModel):
    """A weighted piece of evidence.

    With one term list it scores each match of that list; with several it scores each place
    where all of them occur within `within` words of each other (proximity). A negative weight
    makes it a soft exclusion.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: list[str]
    weight: float = 1.0
    within: int = Field(default=10, ge=1, le=200)
    max_count: int = Field(default=2, ge=1, le=50)


class RoundWord(BaseModel):
    """How a watch's framework names its numbered meetings, per digest language (display
    only: the rules find rounds with the `round_after` term lists). Empty: «الجولة» / "round".
    A word holding "{n}" or "{nth}" is a pattern: en = "{nth} JSG" badges "16th JSG"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ar: str = Field(default="", max_length=40)
    en: str = Field(default="", max_length=40)

    @field_validator("ar", "en")
    @classmethod
    def _one_word_no_number(cls, value: str) -> str:
        value = " ".join(value.split())
        if any(char.isdigit() for char in value):
            raise ValueError(f'the number is added to the word: write "session" or "{{nth}} JSG", got {value!r}')
        return value


# Keys of a watch that change what a digest shows, never a decision: left out of the rules'
# fingerprint, so editing them does not make `monitor reclassify` redo every article.
DISPLAY_ONLY_KEYS = frozenset({"title_en", "round_word"})


class WatchConfig(BaseModel):
    """One thing the analysts want flagged (e.g. the Kuwait–US Strategic Dialogue)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = ""
    title_en: str = ""  # the section heading of an English digest (default: `title`)
    round_word: RoundWord = RoundWord()
    all: list[str] = []
    any: list[str] = []
    none: list[str] = []
    mask: list[str] = []
    clauses: list[ClauseConfig] = []
    threshold: float = 1.0
    title_weight: float = Field(default=3.0, ge=0)
    lead_words: int = Field(default=60, ge=0)
    lead_weight: float = Field(default=2.0, ge=0)
    round_after: list[str] = []
    round_within: int = Field(default=6, ge=0, le=50)

    @field_validator("title", "title_en")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class RulesConfig(BaseModel):
    """The three rule sections together, for callers that validate them on their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: dict[str, list[str]] = {}
    watches: list[WatchConfig] = []
    topics: dict[str, list[str]] = {}


# -- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """A term found in the article; start/end are offsets into the original field text."""

    term: str
    field: FieldName
    start: int
    end: int


@dataclass(frozen=True)
class Decision:
    """What the engine decided about one article, and why."""

    flagged: bool
    watch: str | None
    score: float
    threshold: float
    round: int | None
    topics: tuple[str, ...]
    matches: tuple[Match, ...]
    explanation: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        """The `monitor classify` contract (the caller puts "id" first), plus two extensions."""
        return {
            "flagged": self.flagged,
            "watch": self.watch,
            "score": round(self.score, 3),
            "round": self.round,
            "topics": list(self.topics),
            "matches": [{"term": m.term, "field": m.field, "start": m.start, "end": m.end} for m in self.matches],
            "threshold": self.threshold,
            "explanation": self.explanation,
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(
            flagged=bool(data["flagged"]),
            watch=data.get("watch"),
            score=float(data.get("score", 0.0)),
            threshold=float(data.get("threshold", 0.0)),
            round=data.get("round"),
            topics=tuple(data.get("topics", ())),
            matches=tuple(Match(m["term"], m["field"], int(m["start"]), int(m["end"])) for m in data.get("matches", ())),
            explanation=str(data.get("explanation", "")),
        )
