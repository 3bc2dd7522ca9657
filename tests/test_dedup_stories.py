"""Story membership is a property of the story as a whole: an article that states no round
never bridges two rounds, on the `monitor cluster` path and in the store alike."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.dedup import Clusterer, StoryExtent, cluster_lines, compute_features, story_admits
from tests.test_dedup import CONFIG, FIXTURES, REPO, FixtureRules, article, features_of

# A write-up of the dialogue that states no round: close enough in words to the round-5
# dispatch and to the round-6 announcement below to pass `same_story` with each of them.
ROUNDLESS = {
    "title": "الكويت والولايات المتحدة تواصلان الحوار الاستراتيجي بين البلدين",
    "body": (
        "أكد وزير الخارجية أن الحوار الاستراتيجي بين دولة الكويت والولايات المتحدة الأمريكية يمضي "
        "بثبات، وأن وفود الجانبين في العاصمة الأمريكية تتابع أعمال الحوار ومذكرات التفاهم ومجموعات "
        "العمل في الدفاع والأمن والتجارة والتعليم، بمشاركة وفود من الجانبين."
    ),
    "url": "https://paper.example/politics/roundless",
    "published": "2023-03-15T20:00:00+03:00",
    "watch": "kw-us",
    "round": None,
}
ROUND6 = {
    "title": "الكويت تستضيف الجولة السادسة من الحوار الاستراتيجي مع واشنطن الشهر المقبل",
    "body": (
        "قال مصدر دبلوماسي إن الجولة السادسة من الحوار الاستراتيجي بين الكويت والولايات المتحدة ستعقد في "
        "الكويت الشهر المقبل، وإن وفود الجانبين ستراجع ما تحقق في مجموعات العمل الخاصة بالدفاع والأمن "
        "والتجارة والتعليم ومتابعة مذكرات التفاهم الموقعة، على أن يترأس الاجتماعات وزير الخارجية ونظيره الأمريكي."
    ),
    "url": "https://paper.example/politics/round-six",
    "published": "2023-03-17T12:00:00+03:00",
    "watch": "kw-us",
    "round": 6,
}
CHAIN = {"roundless": ROUNDLESS, "round6": ROUND6}


def chain_item(name: str, **changes: Any) -> dict[str, Any]:
    return {**(CHAIN[name] if name in CHAIN else FIXTURES[name]), **changes}


class ChainRules(FixtureRules):
    def classify(self, title: str, body: str) -> Any:
        for item in CHAIN.values():
            if item["title"] == title:
                return type("Decision", (), {"flagged": True, "watch": item["watch"], "round": item["round"]})
        return super().classify(title, body)


def _cluster_line(name: str, id_: str) -> str:
    item = chain_item(name)
    return json.dumps({"id": id_, "title": item["title"], "body": item["body"], "url": item["url"],
                       "published": item["published"]}, ensure_ascii=False)


def test_the_chain_links_pairwise() -> None:
    """The premise: each neighbour pair passes same_story (as independent write-ups, not
    copies), the two ends do not."""
    from monitor.dedup import is_near_duplicate, same_story

    r5, bridge, r6 = features_of(article("r5_dispatch")), features_of(chain_item("roundless")), features_of(chain_item("round6"))
    assert same_story(bridge, r5, CONFIG) and same_story(r6, bridge, CONFIG)
    assert not is_near_duplicate(bridge, r5, CONFIG) and not is_near_duplicate(r6, bridge, CONFIG)
    assert not same_story(r6, r5, CONFIG)


def test_a_roundless_article_never_bridges_two_rounds_in_monitor_cluster() -> None:
    lines = [_cluster_line("r5_dispatch", "r5"), _cluster_line("roundless", "bridge"), _cluster_line("round6", "r6")]
    stories = {r["id"]: r["story"] for r in (json.loads(out) for out, _ in cluster_lines(lines, CONFIG, rules=ChainRules()))}
    assert stories["bridge"] == stories["r5"]
    assert stories["r6"] != stories["r5"]


def test_a_roundless_story_takes_the_first_round_it_is_told_and_refuses_others() -> None:
    clusterer = Clusterer(CONFIG)
    bridge = clusterer.add("bridge", features_of(chain_item("roundless", published="2023-03-15T09:00:00+03:00")))
    r5 = clusterer.add("r5", features_of(article("r5_dispatch")))
    r6 = clusterer.add("r6", features_of(chain_item("round6", published="2023-03-15T12:00:00+03:00")))
    assert r5.story == bridge.story
    assert r6.story != bridge.story


def test_a_near_copy_of_a_roundless_member_that_states_another_round_is_not_in_the_story() -> None:
    clusterer = Clusterer(CONFIG)
    first = clusterer.add("r5", features_of(article("r5_dispatch")))
    clusterer.add("bridge", features_of(chain_item("roundless")))
    copy = replace(features_of(chain_item("roundless", url="https://other.example/x")), round=6)
    result = clusterer.add("copy6", copy)
    assert result.story != first.story and result.duplicate_of is None


def test_story_admits_every_stated_round_and_the_span_of_the_whole_story() -> None:
    window = CONFIG.story_window
    start = datetime.fromisoformat("2023-03-14T18:00:00+03:00")
    story = StoryExtent(round=5, first_published=start, last_published=start + timedelta(hours=48))
    roundless = features_of(chain_item("roundless"))
    assert story_admits(story, replace(roundless, published=start + timedelta(hours=60)), CONFIG)
    assert story_admits(story, replace(roundless, round=5), CONFIG)
    assert not story_admits(story, replace(roundless, round=6), CONFIG)
    # Within the window of the last member but not of the first: the story would outgrow it.
    assert not story_admits(story, replace(roundless, published=start + window + timedelta(hours=1)), CONFIG)
    assert not story_admits(story, replace(roundless, published=start + timedelta(hours=48) - window - timedelta(hours=1)), CONFIG)
    # A copy is the same dispatch: time does not matter, a different round still does.
    late = replace(roundless, published=start + timedelta(days=30))
    assert story_admits(story, late, CONFIG, copy=True)
    assert not story_admits(story, replace(late, round=6), CONFIG, copy=True)
    grown = story.with_member(replace(roundless, published=start + timedelta(hours=60)))
    assert (grown.round, grown.first_published, grown.last_published) == (5, start, start + timedelta(hours=60))
    assert StoryExtent().with_member(replace(roundless, round=7)).round == 7
    # One watch too: a flagged article of another watch never joins, even as a copy of an
    # unflagged member.
    us = story.with_member(replace(roundless, round=5))
    assert us.watch == "kw-us"
    assert not story_admits(us, replace(roundless, watch="kw-uk"), CONFIG, copy=True)
    assert story_admits(us, replace(roundless, watch=None), CONFIG, copy=True)


def test_a_delivered_story_takes_only_what_it_already_said() -> None:
    """Once a digest or alert carried a story, a later write-up of its round (or of no round)
    is the same news and joins it silently; one stating a round the story never stated is
    news, so it starts a story of its own."""
    start = datetime.fromisoformat("2023-03-14T18:00:00+03:00")
    roundless = replace(features_of(chain_item("roundless")), published=start + timedelta(hours=10))
    delivered_r5 = StoryExtent(round=5, first_published=start, last_published=start, delivered=True)
    assert story_admits(delivered_r5, roundless, CONFIG)
    assert story_admits(delivered_r5, replace(roundless, round=5), CONFIG)
    delivered_none = StoryExtent(round=None, first_published=start, last_published=start, delivered=True)
    assert story_admits(delivered_none, roundless, CONFIG)
    assert not story_admits(delivered_none, replace(roundless, round=6), CONFIG)
    assert story_admits(replace(delivered_none, delivered=False), replace(roundless, round=6), CONFIG)
    # The same holds for a text reusing a member's wording (an agency template).
    assert story_admits(delivered_none, roundless, CONFIG, copy=True)
    assert not story_admits(delivered_none, replace(roundless, round=6), CONFIG, copy=True)


# -- the story-chain property -----------------------------------------------------------------

# A small vocabulary, so that most pairs of one watch pass same_story's keyword floor and
# many are near copies: the ground on which chains form.
VOCABULARY = ("الحوار", "الاستراتيجي", "الكويت", "الولايات", "المتحدة", "الجولة", "وزير", "الخارجية",
              "الدفاع", "الامن", "التعليم", "مذكرات", "التفاهم", "واشنطن", "بريطانيا")
BASE_TIME = datetime.fromisoformat("2023-03-14T00:00:00+00:00")

articles_strategy = st.lists(
    st.tuples(
        st.sampled_from(["kw-us", "kw-uk", None]),  # watch (None: not flagged)
        st.sampled_from([None, None, 4, 5, 6]),  # stated round
        st.integers(min_value=0, max_value=24 * 8),  # hours after BASE_TIME
        st.lists(st.sampled_from(VOCABULARY), min_size=3, max_size=12),  # text
        st.integers(min_value=0, max_value=5),  # url (collisions are exact duplicates)
    ),
    min_size=1,
    max_size=25,
)


def _features(watch: str | None, round_: int | None, hours: int, words: list[str], url: int) -> Any:
    text = " ".join(words)
    return compute_features(text[:40], text, f"https://news.example/{url}", BASE_TIME + timedelta(hours=hours),
                            watch, round_, CONFIG)


def assert_one_round_and_watch_per_story(members: dict[Any, list[tuple[str | None, int | None]]]) -> None:
    for story, pairs in members.items():
        stated = {r for _, r in pairs if r is not None}
        assert len(stated) <= 1, f"story {story} holds rounds {sorted(stated)}"
        watches = {w for w, _ in pairs if w is not None}
        assert len(watches) <= 1, f"story {story} holds watches {sorted(watches)}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(articles_strategy)
def test_no_sequence_of_articles_puts_two_rounds_or_watches_in_one_story_in_monitor_cluster(articles: list) -> None:
    clusterer = Clusterer(CONFIG)
    members: dict[str, list[tuple[str | None, int | None]]] = {}
    spans: dict[str, list[datetime]] = {}
    for number, spec in enumerate(articles):
        features = _features(*spec)
        result = clusterer.add(number, features)
        members.setdefault(result.story, []).append((features.watch, features.round))
        if result.duplicate_of is None:
            spans.setdefault(result.story, []).append(features.published)
    assert_one_round_and_watch_per_story(members)
    for story, dates in spans.items():
        assert max(dates) - min(dates) <= CONFIG.story_window, f"story {story} spans {max(dates) - min(dates)}"


def test_monitor_cluster_with_the_shipped_rules_keeps_the_rounds_apart(tmp_path: Path) -> None:
    """The command itself, classifying with config/monitor.toml (which finds watch kw-us and
    rounds 5, none and 6 in these three texts)."""
    lines = "".join(_cluster_line(name, name) + "\n" for name in ("r5_dispatch", "roundless", "round6"))
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(REPO / "config" / "monitor.toml"), "cluster", "-"],
        input=lines, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    stories = {r["id"]: r["story"] for r in map(json.loads, done.stdout.splitlines())}
    assert stories["roundless"] == stories["r5_dispatch"] != stories["round6"]
