"""Throughput of normalise + classify on one core, beside a plain-regex baseline.

Synthesises >= 50,000 Arabic articles of ~2 KB from the vocabulary of the development corpus
(words about Kuwait, its partners and the dialogues removed from the filler), then times:

- "hard": every article mentions Kuwait and a partner (the issue's hard case), and the
  harder variants where half or all of them also name a dialogue, so that they go through
  the full analysis (scoring, round, topics, offsets);
- "mix": a realistic feed in which ~2% of the articles concern Kuwait; the others talk about
  other countries, some of them about Washington, London or other strategic dialogues;
- "english": the harder case in English (filler from dev-en.jsonl), for the English sources.

The baseline is what a naive monitor would do: one `re` alternation of the same terms, as
written in the rules, searched in the raw (unnormalised) title and body. It finds fewer
articles (it misses every spelling variant and clitic form) and explains nothing; it is there
to put the engine's figure in proportion. Times are CPU seconds of this process
(time.process_time), i.e. per core, so other load on the machine matters less.

    .venv/bin/python bench/relevance_bench.py [--articles 50000] [--repeat 3] [--config PATH] [--corpus PATH] [--english-corpus PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.arabic import normalize  # noqa: E402
from monitor.relevance import RuleSet, RulesConfig, compile_rules  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "dev.jsonl"
DEFAULT_ENGLISH_CORPUS = REPO.parent / "shared" / "corpus" / "dev-en.jsonl"
DEFAULT_CONFIG = REPO / "config" / "monitor.toml"
TARGET_BYTES = 2048

FALLBACK_WORDS = (
    "قال وزير الخارجية في تصريح صحافي اليوم إن الاجتماع بحث سبل تعزيز التعاون بين البلدين في "
    "مختلف المجالات الاقتصادية والسياسية والثقافية مؤكدا أهمية تبادل الزيارات على المستوى الرسمي "
    "وأضاف أن المباحثات تناولت آخر المستجدات الإقليمية والدولية والقضايا ذات الاهتمام المشترك"
).split()

KUWAIT_SENTENCES = (
    "وقال نائب وزير الخارجية الكويتي إن العلاقات بين دولة الكويت والولايات المتحدة الأمريكية متينة.",
    "واستقبل وزير الخارجية في الكويت السفيرة الأمريكية لدى البلاد وبحثا العلاقات الثنائية.",
    "وأكد السفير البريطاني لدى الكويت أن المملكة المتحدة حريصة على تطوير العلاقات مع البلاد.",
    "والتقى الوزير الكويتي نظيره البريطاني في لندن لبحث التعاون بين البلدين الصديقين.",
)
DIALOGUE_SENTENCES = (
    "وتأتي الزيارة تحضيرا لأعمال الجولة السابعة من الحوار الاستراتيجي بين الكويت والولايات المتحدة.",
    "وعقدت مجموعة التوجيه المشتركة الكويتية البريطانية اجتماعها الثالث والعشرين في الكويت.",
    "واختتمت في واشنطن أعمال الجولة الخامسة للحوار الإستراتيجي الكويتي - الأميركي.",
)
OTHER_SENTENCES = (
    "وبحث وزير الخارجية الأمريكي في واشنطن مع نظيره القطري الحوار الاستراتيجي بين البلدين.",
    "وزار رئيس الوزراء البريطاني لندن بعد جولة أوروبية شملت باريس وبرلين.",
    "وانطلقت في الرياض أعمال الحوار الاستراتيجي السعودي الأمريكي بمشاركة وزراء البلدين.",
)


ENGLISH_FALLBACK_WORDS = (
    "The minister said in a statement on Monday that the talks reviewed ways to strengthen cooperation "
    "in many fields and stressed the importance of regular visits at the official level between officials"
).split()
ENGLISH_KUWAIT_SENTENCES = (
    "Kuwait's deputy foreign minister said relations between Kuwait and the United States were strong.",
    "The British ambassador to Kuwait said the UK was keen to develop its ties with the country.",
)
ENGLISH_DIALOGUE_SENTENCES = (
    "The visit prepares the seventh round of the Kuwait-U.S. Strategic Dialogue.",
    "The Kuwait-UK Joint Steering Group held its 23rd session in Kuwait City.",
)


@dataclass(frozen=True)
class Article:
    title: str
    body: str


def load_rules(path: Path) -> tuple[RuleSet, dict]:
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    sections = RulesConfig.model_validate({key: document[key] for key in ("terms", "watches", "topics") if key in document})
    return compile_rules(sections.terms, sections.watches, sections.topics), document


def filler_vocabulary(corpus: Path, ruleset: RuleSet, fallback: Sequence[str] = FALLBACK_WORDS) -> list[str]:
    """Corpus words that no rule term can match, so filler never triggers the rules by chance."""
    if not corpus.exists():
        return list(fallback)
    words = []
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            article = json.loads(line)
            words.extend((article.get("title") or "").split() + (article.get("body") or "").split())
    vocabulary = ruleset.vocabulary()
    clean = []
    for word in words:
        norm = normalize(word)
        if not norm or "&" in word or any(name in norm for name in ("كويت", "كونا", "kuwait", "kuna")):
            continue
        if any(part in vocabulary for part in re.findall(r"\w+", norm)):
            continue
        clean.append(word)
    return clean


def noisy(word: str, rng: random.Random) -> str:
    """The spelling noise feeds really carry: diacritics, tatweel, Persian letters, hamza."""
    roll = rng.random()
    if roll < 0.02 and len(word) > 3:
        return word[:2] + "ـ" + word[2:]
    if roll < 0.04:
        return word + "ً"
    if roll < 0.05:
        return word.replace("ي", "ی").replace("ك", "ک")
    if roll < 0.07:
        return word.replace("أ", "ا").replace("ة", "ه")
    return word


def make_text(rng: random.Random, vocabulary: Sequence[str], sentences: Sequence[str], target: int, noise: bool = True) -> str:
    words: list[str] = []
    size = 0
    while size < target:
        if rng.random() < 0.02:
            word = str(rng.randint(1, 10**6))  # unique tokens: dates, figures (cache misses)
        else:
            word = rng.choice(vocabulary)
            word = noisy(word, rng) if noise else word
        words.append(word)
        size += len(word.encode("utf-8")) + 1
        if rng.random() < 0.06:
            words[-1] += rng.choice(("،", ".", ".\n\n"))
    for sentence in sentences:
        position = rng.randrange(len(words) + 1)
        words[position:position] = sentence.split()
    return " ".join(words)


def make_articles(
    count: int, kuwait_share: float, rng: random.Random, vocabulary: Sequence[str], dialogue_share: float = 0.5,
    english: bool = False,
) -> list[Article]:
    """Articles of ~2 KB; `kuwait_share` of them mention Kuwait and a partner, and of those
    `dialogue_share` also name the dialogue (so they need the full analysis)."""
    articles = []
    kuwait_sentences = ENGLISH_KUWAIT_SENTENCES if english else KUWAIT_SENTENCES
    dialogue_sentences = ENGLISH_DIALOGUE_SENTENCES if english else DIALOGUE_SENTENCES
    for _ in range(count):
        sentences: list[str] = []
        if rng.random() < kuwait_share:
            sentences.append(rng.choice(kuwait_sentences))
            if rng.random() < dialogue_share:
                sentences.append(rng.choice(dialogue_sentences))
        elif rng.random() < 0.15:
            sentences.append(rng.choice(OTHER_SENTENCES))
        title = " ".join(rng.choice(vocabulary) if english else noisy(rng.choice(vocabulary), rng) for _ in range(rng.randint(6, 12)))
        if sentences and rng.random() < 0.5:
            title = sentences[0].rstrip(".")
        articles.append(Article(title, make_text(rng, vocabulary, sentences, TARGET_BYTES, noise=not english)))
    return articles


def baseline(document: dict) -> Callable[[Article], bool]:
    """A naive monitor: the same terms, one alternation, raw text, no analysis."""
    terms = [t for names in document.get("terms", {}).values() for t in names if not t.startswith(("re:", "@")) and "@" not in t]
    pattern = re.compile("|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True)))
    kuwait = re.compile("|".join(re.escape(t) for t in document["terms"]["kuwait"]))

    def run(article: Article) -> bool:
        text = article.title + "\n" + article.body
        found = pattern.findall(text)
        return bool(found) and kuwait.search(text) is not None

    return run


def timed(function: Callable[[Article], object], articles: Sequence[Article], repeat: int = 1) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, number of truthy results), best of `repeat` runs: other
    processes on the machine only ever make a run slower."""
    best_cpu = best_wall = float("inf")
    flagged = 0
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        flagged = 0
        for article in articles:
            if function(article):
                flagged += 1
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall, flagged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=50_000, help="articles per case (default %(default)s)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="vocabulary source")
    parser.add_argument("--english-corpus", type=Path, default=DEFAULT_ENGLISH_CORPUS, help="vocabulary of the English case")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, best kept (default %(default)s)")
    args = parser.parse_args(argv)

    ruleset, document = load_rules(args.config)
    vocabulary = filler_vocabulary(args.corpus, ruleset)
    rng = random.Random(args.seed)
    cases = {
        "hard: Kuwait + partner": make_articles(args.articles, 1.0, rng, vocabulary, dialogue_share=0.0),
        "harder: + dialogue in 50%": make_articles(args.articles, 1.0, rng, vocabulary, dialogue_share=0.5),
        "hardest: + dialogue in 100%": make_articles(args.articles, 1.0, rng, vocabulary, dialogue_share=1.0),
        "mix: 2% Kuwait": make_articles(args.articles, 0.02, rng, vocabulary),
    }
    english_vocabulary = filler_vocabulary(args.english_corpus, ruleset, ENGLISH_FALLBACK_WORDS)
    cases["english: + dialogue in 50%"] = make_articles(args.articles, 1.0, rng, english_vocabulary, dialogue_share=0.5, english=True)
    naive = baseline(document)

    def engine(article: Article) -> bool:
        return ruleset.classify(article.title, article.body).flagged

    warm = make_articles(2_000, 0.5, random.Random(args.seed + 1), vocabulary)
    timed(engine, warm)  # the daemon runs for days: its word cache is warm

    print(
        f"vocabulary {len(set(vocabulary))} distinct filler words; {args.articles} articles per case;"
        f" best of {args.repeat} runs",
        flush=True,
    )
    print(f"{'case':32} {'avg bytes':>9} {'engine art/s':>13} {'baseline art/s':>15} {'engine/baseline':>16} {'flagged':>8} {'baseline hits':>14}")
    for name, articles in cases.items():
        size = sum(len((a.title + a.body).encode("utf-8")) for a in articles) / len(articles)
        engine_cpu, engine_wall, flagged = timed(engine, articles, args.repeat)
        base_cpu, base_wall, hits = timed(naive, articles, args.repeat)
        print(
            f"{name:32} {size:9.0f} {len(articles) / engine_cpu:13,.0f} {len(articles) / base_cpu:15,.0f}"
            f" {base_cpu / engine_cpu:16.2f} {flagged:8} {hits:14}",
            flush=True,
        )
        print(f"{'':32} {'':9} (wall {len(articles) / engine_wall:,.0f}/s engine, {len(articles) / base_wall:,.0f}/s baseline)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
