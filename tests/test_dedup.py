"""Near duplicates, stories, the candidate index and the `monitor cluster` contract."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor import dedup
from monitor.dedup import (
    ArticleFeatures,
    Clusterer,
    DedupConfig,
    MemoryIndex,
    cluster_lines,
    compute_features,
    content_fingerprint,
    features_from_bytes,
    features_to_bytes,
    is_near_duplicate,
    same_story,
)

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "dedup" / "articles.json").read_text(encoding="utf-8"))
CONFIG = DedupConfig()
REPO = Path(__file__).resolve().parents[1]


def article(name: str, **changes: Any) -> dict[str, Any]:
    return {**FIXTURES[name], **changes}


def features_of(item: dict[str, Any], config: DedupConfig = CONFIG) -> ArticleFeatures:
    return compute_features(
        item["title"], item["body"], item.get("url"), datetime.fromisoformat(item["published"]),
        item.get("watch"), item.get("round"), config,
    )


# -- kinds of Arabic noise a syndicated copy carries -----------------------------------------

def persian_letters(text: str) -> str:
    return text.replace("ي", "ی").replace("ك", "ک").replace("ه", "ھ")


def hamza_variants(text: str) -> str:
    return text.replace("أ", "ا").replace("إ", "ا").replace("ؤول", "ئول")


def alef_maqsura_yaa_swap(text: str) -> str:
    return text.replace("ى ", "\0").replace("ي ", "ى ").replace("\0", "ي ")


def taa_marbuta_as_haa(text: str) -> str:
    return text.replace("ة", "ه")


def diacritics(text: str) -> str:
    return " ".join(word + "َ" if len(word) > 3 else word for word in text.split(" "))


def tatweel(text: str) -> str:
    return text.replace("لا", "لـــا").replace("ت", "تـ")


def eastern_digits(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


def html_entities(text: str) -> str:
    return text.replace(" - ", " &#8211; ").replace("، ", "،&nbsp;").replace("(", "&laquo;").replace(")", "&raquo;")


def missing_spaces(text: str) -> str:
    rng = random.Random(3)
    words = text.split(" ")
    return words[0] + "".join(("" if rng.random() < 0.08 else " ") + w for w in words[1:])


NOISES: dict[str, Callable[[str], str]] = {
    f.__name__: f
    for f in (
        persian_letters, hamza_variants, alef_maqsura_yaa_swap, taa_marbuta_as_haa, diacritics, tatweel,
        eastern_digits, html_entities, missing_spaces,
    )
}


def trimmed_paragraph(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "body": "\n\n".join(item["body"].split("\n\n")[:-1])}


def new_headline(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "title": "وزير الخارجية: مذكرات تفاهم وفريق فني لمتابعة نتائج الحوار مع واشنطن"}


def new_dateline(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "body": item["body"].replace("واشنطن - 14 - 3 (وكالة) --", "الكويت - صحيفة:")}


def all_edits(item: dict[str, Any]) -> dict[str, Any]:
    edited = new_dateline(new_headline(trimmed_paragraph(item)))
    return {**edited, "body": persian_letters(missing_spaces(edited["body"]))}


STRUCTURAL: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    f.__name__: f for f in (trimmed_paragraph, new_headline, new_dateline, all_edits)
}


def syndicated_copy(kind: str) -> dict[str, Any]:
    original = article("r5_dispatch", url="https://other.example/copy", published="2023-03-14T21:00:00+03:00")
    if kind in NOISES:
        noise = NOISES[kind]
        return {**original, "title": noise(original["title"]), "body": noise(original["body"])}
    return STRUCTURAL[kind](original)


@pytest.mark.parametrize("kind", [*NOISES, *STRUCTURAL])
def test_syndicated_copy_is_a_near_duplicate_found_through_the_index(kind: str) -> None:
    original = features_of(article("r5_dispatch"))
    copy = features_of(syndicated_copy(kind))
    assert is_near_duplicate(copy, original, CONFIG)
    index = MemoryIndex(CONFIG.bands)
    index.add("original", original)
    index.add("other", features_of(article("unrelated")))
    assert "original" in index.candidates(copy)


@pytest.mark.parametrize("kind", ["persian_letters", "diacritics", "tatweel", "html_entities", "eastern_digits"])
def test_letter_level_noise_leaves_the_content_fingerprint_unchanged(kind: str) -> None:
    original = article("r5_dispatch")
    noisy = syndicated_copy(kind)
    assert content_fingerprint(noisy["title"], noisy["body"]) == content_fingerprint(original["title"], original["body"])


def test_fingerprint_changes_with_the_words() -> None:
    item = article("r5_dispatch")
    assert content_fingerprint(item["title"], item["body"]) != content_fingerprint(item["title"], item["body"] + " إضافة")


def test_different_articles_are_not_near_duplicates() -> None:
    dispatch, writeup, unrelated = (features_of(article(n)) for n in ("r5_dispatch", "r5_writeup", "unrelated"))
    assert not is_near_duplicate(dispatch, unrelated, CONFIG)
    assert not is_near_duplicate(dispatch, writeup, CONFIG)  # same event, independent text: a story, not a copy


def test_agency_template_for_another_round_is_neither_a_copy_nor_the_same_story() -> None:
    r5 = features_of(article("r5_dispatch"))
    r6 = features_of(article("r6_lookalike", published="2023-03-15T12:00:00+03:00"))
    assert not is_near_duplicate(r6, r5, CONFIG)
    assert not same_story(r6, r5, CONFIG)
    clusterer = Clusterer(CONFIG)
    first, second = clusterer.add("r5", r5), clusterer.add("r6", r6)
    assert second.duplicate_of is None
    assert second.story != first.story


def test_round_stated_only_by_the_text_still_separates_template_lookalikes() -> None:
    """Without a classifier the template shares most shingles, but not enough to pass as a copy."""
    r5 = features_of(article("r5_dispatch", watch=None, round=None))
    r6 = features_of(article("r6_lookalike", watch=None, round=None))
    assert dedup.estimated_jaccard(r5, r6) < CONFIG.near_duplicate_threshold


def test_independent_writeup_of_the_same_meeting_joins_the_story() -> None:
    dispatch, writeup = features_of(article("r5_dispatch")), features_of(article("r5_writeup"))
    assert same_story(writeup, dispatch, CONFIG)
    clusterer = Clusterer(CONFIG)
    first = clusterer.add("dispatch", dispatch)
    second = clusterer.add("writeup", writeup)
    assert second == dedup.ClusterResult(duplicate_of=None, story=first.story)


def test_story_window_bounds_the_story() -> None:
    dispatch = features_of(article("r5_dispatch"))
    late = replace(features_of(article("r5_writeup")), published=dispatch.published + timedelta(hours=73))
    assert not same_story(late, dispatch, CONFIG)
    assert same_story(late, dispatch, CONFIG.model_copy(update={"story_window": timedelta(hours=96)}))


def test_different_watches_never_share_a_story() -> None:
    dispatch = features_of(article("r5_dispatch"))
    assert not same_story(replace(features_of(article("r5_writeup")), watch="kw-uk"), dispatch, CONFIG)


def test_duplicate_of_names_the_earliest_copy_and_copies_share_its_story() -> None:
    clusterer = Clusterer(CONFIG)
    original = clusterer.add("a", features_of(article("r5_dispatch")))
    first_copy = clusterer.add("b", features_of(syndicated_copy("persian_letters")))
    copy_of_copy = clusterer.add("c", features_of(syndicated_copy("all_edits")))
    assert first_copy.duplicate_of == "a" and copy_of_copy.duplicate_of == "a"
    assert original.story == first_copy.story == copy_of_copy.story


def test_same_url_from_two_feeds_is_an_exact_duplicate() -> None:
    clusterer = Clusterer(CONFIG)
    clusterer.add("feed1:x", features_of(article("r5_dispatch")))
    other_text = article("unrelated", url="https://agency.example/ArticleDetails.aspx?language=ar&id=5551212&utm_source=rss")
    assert clusterer.add("feed2:y", features_of(other_text)).duplicate_of == "feed1:x"


def test_same_item_polled_twice_gets_the_same_answer_and_no_second_entry() -> None:
    clusterer = Clusterer(CONFIG)
    features = features_of(article("r5_dispatch"))
    first = clusterer.add("a", features)
    again = clusterer.add("a", features)
    assert again == first
    assert clusterer.index.candidates(features) == ["a"]


def test_config_rejects_unknown_keys_and_bands_that_do_not_divide_the_permutations() -> None:
    with pytest.raises(ValidationError):
        DedupConfig.model_validate({"treshold": 0.5})
    with pytest.raises(ValidationError):
        DedupConfig(num_perm=128, bands=24)
    assert DedupConfig.model_validate({"story_window": "48h"}).story_window == timedelta(hours=48)


# -- features, signatures and index --------------------------------------------------------------

def test_signature_is_datasketch_affine32_minhash_of_the_shingles() -> None:
    item = article("r5_dispatch")
    words = dedup.features._normalised_words(item["title"], item["body"])
    hashes = dedup.shingle_hashes(words, CONFIG)
    reference = MinHash(num_perm=CONFIG.num_perm, seed=CONFIG.seed, hashfunc=int, scheme="affine32")
    reference.update_batch(hashes.tolist())
    assert np.array_equal(dedup.minhash_signature(hashes, CONFIG), reference.hashvalues)


@pytest.mark.parametrize(("num_perm", "seed"), [(128, 1), (64, 7), (256, 20261123)])
def test_permutations_are_datasketchs_affine32_permutations(num_perm: int, seed: int) -> None:
    a, b = dedup.features._permutations(num_perm, seed)
    expected_a, expected_b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    assert np.array_equal(a[0], expected_a) and np.array_equal(b[0], expected_b)
    assert a.dtype == np.uint32 and b.dtype == np.uint32


def test_band_hashes_fit_a_signed_bigint_and_one_per_band() -> None:
    features = features_of(article("r5_dispatch"))
    assert len(features.band_hashes) == CONFIG.bands
    assert all(-(2**63) <= value < 2**63 for value in features.band_hashes)
    assert len(set(features.band_hashes)) == CONFIG.bands


def test_features_survive_storage_round_trip() -> None:
    features = features_of(article("r5_dispatch"))
    restored = features_from_bytes(features_to_bytes(features))
    assert restored == features
    assert same_story(restored, features_of(article("r5_writeup")), CONFIG)


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=30)),
    st.text(max_size=40),
    st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=3)), timezone(-timedelta(minutes=90))])),
    st.one_of(st.none(), st.text(max_size=5)),
)
def test_bare_features_are_stored_byte_for_byte_as_by_json_dumps(
    url: str | None, fingerprint: str, published: datetime, language: str | None
) -> None:
    # An article no watch could concern is serialised by a direct writer, not json.dumps:
    # any URL, key, date or language (quotes, controls, non-ASCII) must give the same bytes.
    features = ArticleFeatures(url, fingerprint, b"", (), frozenset(), published, None, None, language, None, frozenset())
    assert dedup.features._bare_features_bytes(features) == dedup.features._general_features_bytes(features)
    assert features_to_bytes(features) == dedup.features._general_features_bytes(features)
    assert features_from_bytes(features_to_bytes(features)) == features


def test_features_are_identical_in_another_process_with_another_hash_seed() -> None:
    """Several daemons share one band table: hashes must not depend on the process."""
    item = article("r5_dispatch")
    script = (
        "import json,sys; from datetime import datetime; from monitor import dedup;"
        "i=json.load(sys.stdin); f=dedup.compute_features(i['title'],i['body'],i['url'],"
        "datetime.fromisoformat(i['published']),i['watch'],i['round']);"
        "sys.stdout.write(dedup.features_to_bytes(f).hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(item), capture_output=True, text=True, env=env, cwd=REPO, check=True
    )
    assert bytes.fromhex(result.stdout) == features_to_bytes(features_of(item))


def _random_features(rng: random.Random, bands: int) -> ArticleFeatures:
    """Band values are band-specific, as band_hashes makes them; few distinct small ones so
    that articles often share a band."""
    values = tuple((band << 40) + rng.choice((rng.getrandbits(5), rng.getrandbits(39))) for band in range(bands))
    return ArticleFeatures(None, "", b"", values, frozenset(), datetime(2024, 1, 1))


def test_memory_index_matches_brute_force_across_batch_merges() -> None:
    rng = random.Random(5)
    index = MemoryIndex(bands=8, merge_every=7)  # many merges, some shared band values
    stored: list[ArticleFeatures] = []
    for number in range(120):
        probe = _random_features(rng, 8)
        expected = [i for i, other in enumerate(stored) if set(other.band_hashes) & set(probe.band_hashes)]
        assert index.candidates(probe) == expected
        if number % 40 == 39:  # a bulk load in the middle, as a rebuild or a batch would do
            block = [_random_features(rng, 8) for _ in range(10)]
            index.add_many(range(len(stored), len(stored) + 10), np.array([f.band_hashes for f in block]))
            stored.extend(block)
        index.add(len(stored), probe)
        stored.append(probe)


def test_index_rebuilt_from_stored_band_hashes_answers_like_the_live_one() -> None:
    """A restart rebuilds the index from the band table; nothing may be lost or invented."""
    rng = random.Random(9)
    live = MemoryIndex(bands=8, merge_every=16)
    rows = []
    for number in range(200):
        features = _random_features(rng, 8)
        live.add(f"id{number}", features)
        rows.append(features.band_hashes)
    rebuilt = MemoryIndex.from_band_table([f"id{n}" for n in range(200)], np.array(rows))
    for _ in range(100):
        probe = _random_features(rng, 8)
        assert rebuilt.candidates(probe) == live.candidates(probe)
    after = features_of(article("r5_dispatch"), DedupConfig(num_perm=32, bands=8))
    rebuilt.add("new", after)
    assert rebuilt.candidates(after)[-1] == "new"


# -- `monitor cluster` ------------------------------------------------------------------------------

def _line(name: str, id_: str, **changes: Any) -> str:
    item = article(name, **changes)
    return json.dumps({"id": id_, "title": item["title"], "body": item["body"], "url": item["url"],
                       "published": item["published"], "source": "test"}, ensure_ascii=False)


class FixtureRules:
    """A stand-in classifier answering from the fixture labels (what monitor.relevance would say)."""

    def classify(self, title: str, body: str) -> Any:
        for item in FIXTURES.values():
            if isinstance(item, dict) and item["title"] == title:
                return type("Decision", (), {"flagged": item["watch"] is not None, "watch": item["watch"], "round": item["round"]})
        return type("Decision", (), {"flagged": False, "watch": None, "round": None})


def test_cluster_lines_contract() -> None:
    copy = syndicated_copy("all_edits")
    lines = [
        _line("r5_dispatch", "a1"),
        _line("unrelated", "a2"),
        json.dumps({"id": "a3", "title": copy["title"], "summary": copy["body"], "published": copy["published"]}, ensure_ascii=False),
        "",
        "{not json",
        json.dumps({"title": "no id"}),
        _line("r5_writeup", "a4"),
        _line("r6_lookalike", "a5"),
    ]
    output = list(cluster_lines(lines, CONFIG, rules=FixtureRules()))
    results = [json.loads(out) for out, err in output if out is not None]
    errors = [json.loads(err) for out, err in output if err is not None]
    assert [r["id"] for r in results] == ["a1", "a2", "a3", "a4", "a5"]
    assert [list(r) for r in results] == [["id", "duplicate_of", "story"]] * 5
    by_id = {r["id"]: r for r in results}
    assert by_id["a3"]["duplicate_of"] == "a1"
    assert by_id["a1"]["story"] == by_id["a3"]["story"] == by_id["a4"]["story"]
    assert len({by_id[i]["story"] for i in ("a1", "a2", "a5")}) == 3
    assert [e["line"] for e in errors] == [5, 6]
    assert all(isinstance(r["story"], str) for r in results)


def test_cluster_lines_without_rules_or_dates_still_finds_copies() -> None:
    copy = syndicated_copy("trimmed_paragraph")
    lines = [
        json.dumps({"id": 1, "title": FIXTURES["r5_dispatch"]["title"], "body": FIXTURES["r5_dispatch"]["body"]}, ensure_ascii=False),
        json.dumps({"id": 2, "title": copy["title"], "body": copy["body"]}, ensure_ascii=False),
    ]
    results = [json.loads(out) for out, _ in cluster_lines(lines)]
    assert results[1] == {"id": 2, "duplicate_of": 1, "story": results[0]["story"]}


def test_same_story_from_two_feeds_in_one_pass_is_one_story_whatever_the_order() -> None:
    lines = [_line("r5_dispatch", "kuna"), _line("r5_writeup", "paper")]
    forward = [json.loads(o) for o, _ in cluster_lines(lines, CONFIG, rules=FixtureRules())]
    backward = [json.loads(o) for o, _ in cluster_lines(lines[::-1], CONFIG, rules=FixtureRules())]
    assert forward[0]["story"] == forward[1]["story"]
    assert backward[0]["story"] == backward[1]["story"]


def test_articles_without_text_are_not_copies_of_each_other() -> None:
    empty = [compute_features("", "", f"https://x.example/{n}", datetime(2024, 1, 1)) for n in range(2)]
    assert empty[0].band_hashes == ()
    assert empty[0].fingerprint != empty[1].fingerprint
    assert not is_near_duplicate(empty[0], empty[1], CONFIG)
    clusterer = Clusterer(CONFIG)
    assert [clusterer.add(n, f).duplicate_of for n, f in enumerate(empty)] == [None, None]


def test_exact_keys_only_when_near_duplicates_are_not_needed() -> None:
    """The poller skips the MinHash for articles no watch could flag: they keep the exact
    keys (fingerprint, canonical URL) and never enter the LSH index."""
    from datetime import datetime, timezone

    from monitor.dedup import DedupConfig, compute_features

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    text = "ارتفعت أسعار النفط في الأسواق العالمية اليوم وسط توقعات بزيادة الطلب"
    full = compute_features("النفط", text, "https://www.example.com/a?utm_source=x", when, config=DedupConfig())
    exact = compute_features("النفط", text, "https://www.example.com/a?utm_source=x", when, config=DedupConfig(),
                             near_duplicates=False)
    assert full.band_hashes and not exact.band_hashes
    assert exact.canonical_url == full.canonical_url == "https://example.com/a"
    # Their exact-copy key is the text as published: a copy in another feed shares it, other
    # text does not, and it never equals the normalised key of an article that may concern.
    copy = compute_features("النفط", text, "https://other.example/b", when, near_duplicates=False)
    other = compute_features("النفط", text + " أيضا", "https://www.example.com/a", when, near_duplicates=False)
    assert exact.fingerprint == copy.fingerprint != other.fingerprint
    assert exact.fingerprint.startswith("verbatim:") and exact.fingerprint != full.fingerprint
    assert len(exact.fingerprint) <= 64  # article.fingerprint's column
    # Without a word of text, keyed by the URL, as for any article.
    bare = [compute_features("", " . ", f"https://x.example/{n}", when, near_duplicates=False) for n in range(2)]
    assert bare[0].fingerprint != bare[1].fingerprint and bare[0].fingerprint.startswith("empty:")
