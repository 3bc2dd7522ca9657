"""What a digest in the reader's language costs (#10 part 2): building its items from the store
(each story's write-up in the digest's language, "also reported by" across both languages) and
rendering the email, for an Arabic and an English digest of the same two-language stories.

Peer: the single-language item building of before (the story's headline article and its members'
feed names only), run on the same database, so the ratio is what choosing by language costs.

    .venv/bin/python bench/digest_bench.py [--stories 200] [--members 6] [--db URL] [--repeat 5]

Prints figures; records nothing anywhere but its own temporary database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlmodel import select

from monitor import digest_items, notify
from monitor.config import Config, load_config
from monitor.daemon import open_store
from monitor.digest import DigestItem, Outlet, render_email
from monitor.digest_fit import _size
from monitor.models import Article, Feed, Story
from monitor.store import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
AR_TEXT = ("واشنطن (كونا) — انطلقت اليوم أعمال الجولة الخامسة من الحوار الاستراتيجي بين دولة الكويت والولايات "
           "المتحدة الأمريكية، وبحث الجانبان التعاون الدفاعي والأمن السيبراني والتبادل التجاري والتعليم. ") * 4
EN_TEXT = ("WASHINGTON — The United States and Kuwait held the fifth U.S.-Kuwait Strategic Dialogue today, "
           "reaffirming their partnership on defense, cybersecurity, trade and education. ") * 4
FEEDS = [("kuna-ar", "كونا", "ar"), ("alqabas", "القبس", "ar"), ("alrai", "الراي", "ar"),
         ("kuna-en", "KUNA English", "en"), ("state", "U.S. Department of State", "en"), ("reuters", "Reuters", "en")]


def config_text(directory: Path, db_url: str) -> str:
    rules = (REPO / "config" / "monitor.toml").read_text(encoding="utf-8")
    rules = rules[rules.index("# === RELEVANCE RULES"):]
    feeds = "".join(f'[[feeds]]\nid = "{i}"\nname = "{n}"\nurl = "http://127.0.0.1:9/{i}.xml"\nlanguage = "{lang}"\n\n'
                    for i, n, lang in FEEDS)
    digests = "".join(f'[[digests]]\nid = "{lang}"\nat = "07:30"\nwatches = ["kw-us", "kw-uk"]\nchannels = ["desk"]\n'
                      f'language = "{lang}"\n\n' for lang in ("ar", "en"))
    return f"""[monitor]
state_dir = "{directory}"
[database]
url = "{db_url}"
{feeds}
[[channels]]
id = "desk"
type = "email"
host = "127.0.0.1"
port = 2525
security = "none"
from = "Dialogue Monitor <monitor@example.org>"
to = ["desk@example.org"]

{digests}
{rules}"""


def populate(store: Store, stories: int, members: int) -> None:
    """`stories` stories, each of `members` write-ups alternating Arabic and English, headed by an
    Arabic one (the English digest must look further), one English write-up in three a near-copy."""
    with store.session() as session:
        for s in range(stories):
            watch, round_ = ("kw-uk", 12) if s % 4 == 0 else ("kw-us", 5)
            story = Story(key=f"s{s}", first_seen_at=NOW, watch=watch, round=round_, flagged_at=NOW, score=9.0)
            session.add(story)
            session.flush()
            first_en = None
            for m in range(members):
                feed_id, _, lang = FEEDS[(m // 2) % 3 + (3 if m % 2 else 0)]
                text = AR_TEXT if lang == "ar" else EN_TEXT
                term = "الحوار الاستراتيجي" if lang == "ar" else "Strategic Dialogue"
                start = text.index(term)
                decision = {"flagged": True, "watch": watch, "round": round_, "topics": ["defense", "cyber", "trade_investment"],
                            "matches": [{"term": term, "field": "body", "start": start, "end": start + len(term)}]}
                article = Article(
                    feed_id=feed_id, guid=f"{s}-{m}", link=f"https://{feed_id}.example/{s}/{m}",
                    title=f"{'الحوار الاستراتيجي الكويتي الأمريكي' if lang == 'ar' else 'U.S.-Kuwait Strategic Dialogue'} ({s}.{m})",
                    summary=text, language=lang, fingerprint=os.urandom(8).hex(), published_at=NOW - timedelta(minutes=members - m),
                    first_seen_at=NOW, flagged=True, watch=watch, score=9.0, round=round_, decision=json.dumps(decision),
                    rules_fingerprint="bench", story_id=story.id, full_text=True, features=os.urandom(600),
                    duplicate_of=first_en if (lang == "en" and first_en is not None and m % 3 == 0) else None,
                )
                session.add(article)
                session.flush()
                if m == 0:
                    story.headline_article_id = article.id
                    session.add(story)
                if lang == "en" and first_en is None:
                    first_en = article.id
        session.commit()


def single_language_items(store: Store, config: Config) -> list[DigestItem]:
    """The item building before #10 part 2: the headline article, its members' feed names."""
    items = []
    with store.session() as session:
        for story in session.exec(select(Story).where(Story.flagged_at.is_not(None)).order_by(Story.watch, Story.flagged_at)):  # type: ignore[union-attr]
            headline = session.get(Article, story.headline_article_id)
            members = session.exec(select(Article.feed_id).where(Article.story_id == story.id, Article.id != headline.id)).all()
            names = {feed.id: feed.name or feed.id for feed in session.exec(select(Feed))}
            others = tuple(dict.fromkeys(names.get(f, f) for f in members if f != headline.feed_id))
            decision = json.loads(headline.decision)
            excerpt, highlights = digest_items._excerpt(headline.summary, decision.get("matches", []))
            items.append(DigestItem(
                story_id=story.key, headline=headline.title, url=headline.link, source=names[headline.feed_id],
                published=headline.published_at, watch=story.watch or "", watch_title=story.watch or "", round=headline.round,
                topics=tuple(decision.get("topics", [])), excerpt=excerpt, highlights=highlights,
                also_reported_by=tuple(Outlet(name) for name in others), more_outlets=max(0, len(members) - len(others))))
    return items


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=200)
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import logging

    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        db_url = args.db or f"sqlite:///{directory / 'bench.db'}"
        path = directory / "monitor.toml"
        path.write_text(config_text(directory, db_url), encoding="utf-8")
        config = load_config(path, {})
        store = open_store(config)
        populate(store, args.stories, args.members)
        print(f"{args.stories} stories of {args.members} write-ups (half Arabic, half English) on {store.engine.dialect.name}, "
              f"median of {args.repeat}")
        peer, _ = timed(lambda: single_language_items(store, config), args.repeat)
        print(f"  items, single-language (before):  {peer * 1000:8.1f} ms")
        for digest in config.digests:
            build, content = timed(lambda d=digest: notify.preview_digest(store, config, d, now=NOW), args.repeat)
            render, message = timed(lambda c=content: render_email(c, "m@example.org", ["d@example.org"], "<m@x>"), args.repeat)
            html = message.get_body(("html",)).get_content()
            english = sum(1 for s in content.sections for i in s.items if i.language == "en")
            print(f"  {digest.language} digest: items {build * 1000:8.1f} ms ({build / peer:.2f}x before), "
                  f"email render {render * 1000:7.1f} ms, HTML {_size(html) / 1000:.1f} KB, "
                  f"headlines in English {english}/{content.total}")
        store.engine.dispose()


if __name__ == "__main__":
    main()
