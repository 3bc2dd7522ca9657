"""feedparser's own test corpus through parse_feed, fast path and feedparser alike.

The corpus is the `tests/` folder of the pinned release's source distribution: thousands of
small documents written to break feed parsers (every encoding, entity, namespace, sanitizer
and ill-formed case feedparser has met). monitor/sources/fastfeed.py claims to give exactly what
feedparser gives; this holds it to that on documents nobody here wrote. The sdist is fetched
once with pip from the package registry and kept under .venv (never copied into the repo);
without the registry the tests skip and say so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from monitor.sources.fastfeed import VERIFIED_FEEDPARSER, parse_fast
from monitor.sources.parse import _response_headers, parse_feed

RELEASE = VERIFIED_FEEDPARSER
CACHE = Path(__file__).resolve().parent.parent / ".venv" / "cache" / f"feedparser-{RELEASE}"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
BASE_URL = "http://example.com/feed.xml"
# The corpus's top-level folders (tests/wellformed is split: sanitize alone is a third of it).
FOLDERS = [
    "wellformed/sanitize",
    "wellformed/other",
    "illformed",
    "encoding",
    "entities",
    "http",
    "compression",
]
# feedparser's runtests.py serves these lines of a document's comment as HTTP headers.
_HEADER_LINE = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)

pytestmark = pytest.mark.skipif(
    feedparser.__version__ != RELEASE, reason=f"the corpus test is for feedparser {RELEASE}"
)


def _download(target: Path) -> None:
    """The sdist's tests/ folder into `target`, through a temporary folder renamed into place
    so an interrupted run leaves no half corpus behind."""
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
            "--timeout", "20", "--retries", "1",
            "--dest", work, f"feedparser=={RELEASE}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        archives = list(Path(work).glob(f"feedparser-{RELEASE}.tar.gz"))
        if done.returncode != 0 or not archives:
            last = (done.stderr.strip().splitlines() or ["no archive"])[-1]
            pytest.skip(
                f"feedparser {RELEASE} corpus skipped: pip could not fetch its sdist from the package "
                f"registry (offline?): {last}"
            )
        unpacked = Path(work) / "unpacked"
        prefix = f"feedparser-{RELEASE}/tests/"
        with tarfile.open(archives[0]) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
            archive.extractall(unpacked, members=members, filter="data")
        try:
            (unpacked / f"feedparser-{RELEASE}" / "tests").rename(target)
        except OSError:
            if not target.is_dir():  # else another test process got there first: same files
                raise


@pytest.fixture(scope="session")
def corpus() -> Path:
    tests = CACHE / "tests"
    if not tests.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        _download(tests)
    return tests


def _documents(corpus: Path, folder: str) -> list[Path]:
    if folder == "wellformed/other":
        root = corpus / "wellformed"
        return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "sanitize")
    return sorted(p for p in (corpus / folder).rglob("*") if p.is_file())


def _headers(body: bytes) -> dict[str, str]:
    return {name.decode().strip(): value.decode("latin-1").strip() for name, value in _HEADER_LINE.findall(body)}


def test_folders_cover_the_whole_corpus(corpus: Path) -> None:
    everything = {p for p in corpus.rglob("*") if p.is_file() and p.suffix != ".py"}
    covered = {p for folder in FOLDERS for p in _documents(corpus, folder)}
    assert everything <= covered
    assert len(covered) > 2000


@pytest.mark.parametrize("folder", FOLDERS)
def test_fast_path_and_feedparser_agree_on_the_corpus(corpus: Path, folder: str) -> None:
    """No exception from either path (the fast path is also called directly, since parse_feed
    would hide its failure by falling back to feedparser), and the same ParsedFeed."""
    failures = []
    documents = _documents(corpus, folder)
    assert documents
    for path in documents:
        body = path.read_bytes()
        headers = _headers(body)
        name = path.relative_to(corpus)
        try:
            parse_fast(body, _response_headers(headers))
            fast = parse_feed(body, headers, base_url=BASE_URL, fetched_at=NOW)
            slow = parse_feed(body, headers, base_url=BASE_URL, fetched_at=NOW, fast=False)
        except Exception as exc:  # collected, so one run names every failing document
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if fast != slow:
            failures.append(f"{name}: fast path {fast!r} != feedparser {slow!r}")
    assert not failures, f"{len(failures)} of {len(documents)} documents:\n" + "\n".join(failures[:20])


# The sanitizer documents whose words after an embed html_to_text used to drop: a
# self-closing <iframe/>, an unclosed <object>. Each expects "safe description".
EMBEDS = {
    "item_content_encoded_iframe.xml": "summary",
    "item_description_iframe.xml": "summary",
    "item_fullitem_iframe.xml": "summary",
    "entry_content_object.xml": "summary",
    "entry_summary_object.xml": "summary",
    "entry_title_object.xml": "title",
    "item_content_encoded_object.xml": "summary",
    "item_description_object.xml": "summary",
    "item_fullitem_object.xml": "summary",
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
@pytest.mark.parametrize("name", sorted(EMBEDS))
def test_text_after_an_embed_survives(corpus: Path, name: str, fast: bool) -> None:
    body = (corpus / "wellformed" / "sanitize" / name).read_bytes()
    feed = parse_feed(body, {}, base_url=BASE_URL, fetched_at=NOW, fast=fast)
    (entry,) = feed.entries
    assert getattr(entry, EMBEDS[name]) == "safe description"


def test_cache_is_outside_the_repository() -> None:
    """The corpus is someone else's work: it lives in the ignored .venv, never in git."""
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(CACHE)], cwd=CACHE.parents[2], capture_output=True, check=False
    )
    if shutil.which("git") is None or ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0
