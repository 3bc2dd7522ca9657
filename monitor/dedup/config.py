"""`[dedup]`: the thresholds of near-duplicate and story decisions, measured on the corpus."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.durations import Duration


# -- configuration ----------------------------------------------------------------------------


class DedupConfig(BaseModel):
    """The `[dedup]` TOML section.

    The defaults come from bench/eval_dedup.py on ../shared/corpus/dev.jsonl (see the
    figures quoted per field and in bench/README.md, section "Dedup").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Character 6-grams of the normalised text with the spaces removed (`--sweep`): syndicated
    # pairs score >= 0.71, pairs of different events <= 0.19 (median 0.02), and a harsher copy
    # (new headline, last paragraph cut, 5% lost spaces, 2% typos) >= 0.59, where word 3-grams
    # fall to 0.34 and word 5-grams to 0.21. Shorter char n-grams raise the background
    # similarity (char-4: median 0.09, 17x the false LSH candidates), longer ones lose copies.
    shingle: Literal["char", "word"] = "char"
    shingle_size: int = Field(6, ge=2, le=12)
    # 32 bands of 4 rows: a pair at Jaccard 0.59 (the harsh copy above) is a candidate with
    # probability 0.98, at 0.71 with 0.9999; a dev-like archive of 1M yields ~300 false
    # candidates per look-up, each a 128-value comparison. 128 permutations estimate J with
    # a standard error of at most 0.044.
    num_perm: int = Field(128, ge=16, le=1024)
    bands: int = Field(32, ge=1, le=512)
    seed: int = 1
    # Estimated Jaccard at or above which two texts are one dispatch: midway between the
    # highest pair of different events (0.19) and the harsh copies (0.59).
    near_duplicate_threshold: float = Field(0.4, gt=0.0, le=1.0)
    # Stories. On dev every write-up of one event is published within 22 h of the first,
    # and different happenings of one watch and round are >= 88 h apart; story P/R is 1.00/1.00
    # for any window from 24 h to 72 h (the default) and falls to 0.82 precision at 96 h.
    story_window: Duration = timedelta(hours=72)
    # Keyword-set Jaccard floor for two articles of the same watch and compatible round.
    # Same-event pairs on dev score 0.12-0.35, but different happenings of one round also
    # 0.08-0.26, so time and round do most of the separating. Any floor in 0.00-0.12 gives
    # P/R 1.00/1.00 at 72 h; 0.11 also keeps precision 1.00 if the window is stretched to 96 h
    # (it excludes the 88-94 h look-alikes at 0.08 and 0.10), and 0.16 starts losing pairs.
    story_threshold: float = Field(0.11, ge=0.0, le=1.0)
    # When either watch is unknown (pure-function callers only; the store and Clusterer
    # group only articles of one watch): above every in-window pair of different events (0.16).
    story_threshold_unknown_watch: float = Field(0.30, ge=0.0, le=1.0)
    max_keywords: int = Field(64, ge=8, le=1024)

    @model_validator(mode="after")
    def _bands_divide_perms(self) -> DedupConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"bands ({self.bands}) must divide num_perm ({self.num_perm})")
        return self

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands
