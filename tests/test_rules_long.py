"""Very long texts: the analysed prefix, the cap on hits per term, offsets that still point
into the original, the linear pairing steps (checked against their quadratic definitions),
and the real `monitor classify` / `monitor cluster` on a 2.6 MB line (issue #12, section 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import monitor.relevance.classify as classify_module
import monitor.relevance.rounds as rounds_module
from monitor import dedup
from monitor.arabic import ANALYSED_CHARS, analysed_prefix, normalize
from monitor.config import load_config
from monitor.relevance.terms import _Cover, _Field, _Hit
from monitor.relevance import MAX_HITS_PER_TERM, RuleSet, WatchConfig, compile_rules
from tests.conftest import DEFAULT_CONFIG, REPO, write_config

SENTENCE = "عقدت الكويت والولايات المتحدة الجولة الخامسة من الحوار الاستراتيجي في واشنطن. "
TITLE = "الكويت والولايات المتحدة تعقدان الجولة الخامسة من الحوار الاستراتيجي"
WHEN = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_config(DEFAULT_CONFIG, {}).rules


def two_term_rules() -> RuleSet:
    """Flags Kuwait alone; `uk` only adds matches (to see whether a later term was read)."""
    watch = WatchConfig(id="w", all=["kw"], clauses=[{"terms": ["kw"]}, {"terms": ["uk"]}], threshold=1.0)
    return compile_rules({"kw": ["كويت"], "uk": ["بريطانيا"]}, [watch], {})


def filler(length: int) -> str:
    """Words no rule here matches, exactly `length` characters."""
    return ("نص عادي " * (length // 8 + 1))[:length]


# -- the prefix ----------------------------------------------------------------------------------


def test_the_documented_prefix_is_the_one_the_code_uses() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"first {ANALYSED_CHARS:,} characters" in readme
    assert f"at most {MAX_HITS_PER_TERM} matches of one term" in readme
    assert f"first {ANALYSED_CHARS:,} characters" in DEFAULT_CONFIG.read_text(encoding="utf-8")


def test_a_term_inside_the_prefix_counts_and_one_beyond_it_does_not() -> None:
    rules = two_term_rules()
    inside = filler(ANALYSED_CHARS - len(" الكويت")) + " الكويت"
    assert len(inside) == ANALYSED_CHARS
    body = inside + " بريطانيا" + filler(50_000)
    decision = rules.classify("", body)
    assert decision.flagged
    assert [(m.term, body[m.start:m.end]) for m in decision.matches] == [("كويت", "الكويت")]
    assert decision.matches[0].end == ANALYSED_CHARS
    # Kuwait one word later: beyond the prefix, as if absent (and the prefilter agrees).
    beyond = filler(ANALYSED_CHARS) + " الكويت" + filler(100)
    assert not rules.classify("", beyond).flagged
    assert not rules.may_concern("", beyond)
    assert rules.classify("", beyond[: ANALYSED_CHARS + 7]).flagged is False
    assert rules.classify("الكويت", beyond).flagged  # the title has its own prefix


def test_a_word_across_the_limit_is_not_cut_into_a_shorter_term() -> None:
    rules = two_term_rules()
    # «الكويتيين» straddles the limit: cut at the limit it would read «الكويت».
    body = filler(ANALYSED_CHARS - 6) + " الكويتيين " + filler(100)
    word_start = ANALYSED_CHARS - 5
    assert body[word_start:].startswith("الكويتيين")
    assert len(analysed_prefix(body)) <= word_start
    assert not rules.classify("", body).flagged


@given(st.text(alphabet="ab \n", max_size=300), st.integers(min_value=1, max_value=200))
def test_analysed_prefix_is_a_prefix_within_the_limit_cut_between_words(text: str, limit: int) -> None:
    head = analysed_prefix(text, limit)
    assert text.startswith(head)
    assert len(head) <= limit
    if len(text) <= limit:
        assert head == text
    elif len(head) < limit or not (text[limit].isspace() or text[limit - 1].isspace()):
        # cut short: at a space, unless no space lies within the look-back window
        assert head == text[:limit] or text[len(head)].isspace() or head[-1:].isspace()


# -- the cap -------------------------------------------------------------------------------------


def test_100000_repetitions_list_at_most_the_cap_per_term(shipped: RuleSet) -> None:
    body = SENTENCE * 100_000
    decision = shipped.classify(TITLE, body)
    assert decision.flagged and decision.watch == "kw-us" and decision.round == 5
    per_term = Counter((m.term, m.field) for m in decision.matches)
    assert max(per_term.values()) == MAX_HITS_PER_TERM  # the cap, reached
    assert all(m.end <= ANALYSED_CHARS for m in decision.matches if m.field == "body")
    assert len(decision.explanation) < 2_000
    for match in decision.matches:
        text = TITLE if match.field == "title" else body
        assert normalize(text[match.start:match.end])  # points at words, not at padding


def test_a_mask_beyond_the_cap_still_masks(shipped: RuleSet) -> None:
    """Masks apply before the cap: the 60th mention of the Qatari dialogue is still masked
    (its two spellings are two terms, each under the cap; the mask term has 70 hits)."""
    qatar = ["وناقش الحوار الاستراتيجي القطري الأمريكي ملفات عدة. ", "وفي حوار استراتيجي قطري أمريكي آخر. "]
    body = SENTENCE + "".join(qatar[n % 2] for n in range(70))
    article = classify_module._Article(TITLE, body)
    assert len(article.hits(shipped.index, "other_dialogue")) == MAX_HITS_PER_TERM
    hits = article.hits(shipped.index, "us_dialogue", ["other_dialogue"])
    assert sorted(h.field for h in hits) == ["body", "title"]  # the title's and the first sentence's only


# -- offsets -------------------------------------------------------------------------------------


def test_offsets_point_at_the_original_characters_in_a_long_noisy_text(shipped: RuleSet) -> None:
    variants = ["للحوار الإستراتيجيّ", "الحوار الاستـراتيجي", "الحوار&nbsp;الاستراتيجي", "الحِوار الاستراتيجي"]
    parts = []
    for number in range(500):
        parts.append(filler(200 + number % 7))
        parts.append(f" {variants[number % len(variants)]} بين الكويت وواشنطن ")
    body = "".join(parts)
    assert len(body) > ANALYSED_CHARS
    decision = shipped.classify(TITLE, body)
    assert decision.flagged
    seen = 0
    for match in decision.matches:
        if match.field != "body":
            continue
        raw = body[match.start:match.end]
        assert raw == raw.strip() and raw
        if match.term == "الحوار الاستراتيجي":
            assert raw in variants
            seen += 1
        elif match.term == "كويت":
            assert raw == "الكويت"
    assert seen == MAX_HITS_PER_TERM


def test_offsets_near_the_end_of_the_prefix() -> None:
    rules = two_term_rules()
    body = filler(ANALYSED_CHARS - 20) + " والكويتـية " + filler(200)
    match = rules.classify("", body).matches[0]
    assert body[match.start:match.end] == "والكويتـية"


# -- the linear steps agree with their quadratic definitions ----------------------------------------


def _old_gap(a: _Hit, b: _Hit) -> int:
    if b.first > a.last:
        return b.first - a.last - 1
    if a.first > b.last:
        return a.first - b.last - 1
    return 0


def _old_proximity(config: WatchConfig, per_list: list[list[_Hit]], within: int) -> list:
    found = []
    for anchor in per_list[0]:
        group = [anchor]
        for others in per_list[1:]:
            near = [
                (_old_gap(anchor, o), o)
                for o in others
                if o is not anchor and not (anchor.first <= o.last and o.first <= anchor.last) and _old_gap(anchor, o) <= within
            ]
            if not near:
                break
            group.append(min(near, key=lambda pair: pair[0])[1])
        else:
            found.append((*classify_module._position_weight(config, anchor), group))
    return found


def _hit_lists(draw: st.DrawFn, name: str) -> list[_Hit]:
    """Sorted, non-overlapping hits of one list in the body (what _outermost leaves)."""
    hits, position = [], draw(st.integers(0, 5))
    for _ in range(draw(st.integers(0, 12))):
        length = draw(st.integers(1, 3))
        hits.append(_Hit(name, name, "body", position, position + length - 1))
        position += length + draw(st.integers(0, 8))
    return hits


@st.composite
def hit_groups(draw: st.DrawFn) -> list[list[_Hit]]:
    return [_hit_lists(draw, f"l{n}") for n in range(draw(st.integers(2, 4)))]


@settings(max_examples=300)
@given(hit_groups(), st.integers(1, 12))
def test_proximity_pairs_the_same_hits_as_the_quadratic_definition(per_list: list[list[_Hit]], within: int) -> None:
    config = WatchConfig(id="w", all=["l0"], lead_words=10)
    assert classify_module._proximity_occurrences(config, per_list, within) == _old_proximity(config, per_list, within)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 4)), max_size=15), st.integers(0, 45), st.integers(0, 50), st.integers(0, 9))
def test_cover_answers_masks_and_binding_like_the_pairwise_checks(spans: list, first: int, last: int, within: int) -> None:
    hits = [_Hit("m", "m", "body", start, start + length) for start, length in spans]
    cover = _Cover(hits)
    assert cover.reaches(first, last) == any(h.first <= first and h.last >= last for h in hits)
    anchor = _Hit("a", "a", "body", first, first)
    value_last = first + last % 4
    span = _Hit("a", "a", "body", first, value_last)
    assert rounds_module._bound(anchor, value_last, cover, within) == any(_old_gap(span, b) <= within for b in hits)


@given(st.lists(st.text(alphabet="abc", min_size=1, max_size=4), min_size=1, max_size=30))
def test_word_at_agrees_with_counting_spaces(words: list[str]) -> None:
    field = _Field("body", " ".join(words))
    joined = field.joined()
    assert [field.word_at(i) for i in range(len(joined))] == [joined.count(" ", 0, i) for i in range(len(joined))]


# -- dedup reads the same prefix --------------------------------------------------------------------


def test_dedup_features_of_huge_items() -> None:
    head = SENTENCE * (ANALYSED_CHARS // len(SENTENCE) + 10)
    one = dedup.compute_features(TITLE, head + "ذيل أول", None, WHEN)
    same = dedup.compute_features(TITLE, head + "ذيل أول", None, WHEN)
    other = dedup.compute_features(TITLE, head + "ذيل آخر", None, WHEN)
    assert one == same
    assert one.fingerprint != other.fingerprint  # the raw tail still tells them apart
    assert one.band_hashes == other.band_hashes  # the analysed prefix is the same: near-copies
    assert one.fingerprint == dedup.content_fingerprint(TITLE, head + "ذيل أول")
    # Within the prefix the fingerprint is the plain one of the normalised words (unchanged).
    short = "خبر قصير عن الكويت"
    words = dedup.features._normalised_words(TITLE, short)
    assert dedup.compute_features(TITLE, short, None, WHEN).fingerprint == dedup.features._fingerprint_of_words(words)


# -- the real command line ------------------------------------------------------------------------


def _monitor() -> list[str]:
    script = REPO / ".venv" / "bin" / "monitor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]


@pytest.mark.parametrize("command", ["classify", "cluster"])
def test_monitor_decides_a_2_6_mb_line(tmp_path: Path, command: str) -> None:
    config = write_config(tmp_path, "")
    body = SENTENCE * (2_600_000 // len(SENTENCE.encode("utf-8")))
    source = tmp_path / "big.jsonl"
    source.write_text(json.dumps({"id": "big", "title": TITLE, "body": body}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert source.stat().st_size > 2_600_000
    done = subprocess.run(
        [*_monitor(), "--config", str(config), command, str(source)],
        capture_output=True, text=True, cwd=REPO, timeout=600,  # a guard against a hang, not a speed check
    )
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["id"] == "big"
    if command == "classify":
        assert row["flagged"] is True and row["watch"] == "kw-us" and row["round"] == 5
        assert 0 < len(row["matches"]) <= MAX_HITS_PER_TERM * 12
    else:
        assert row["duplicate_of"] is None and row["story"]
