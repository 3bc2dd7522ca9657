"""The `monitor` command. Each sub-command is a thin layer over the modules that do the work.

Exit status: 0 success, 1 the command ran but found a problem it reports (a bad input line,
a failed delivery), 2 usage or configuration error (including a database URL that cannot
work: malformed, no driver, a SQLite directory nobody may write; restarting will not help),
75 (EX_TEMPFAIL) the database could not be reached (restarting later may help), 130
interrupted. Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import structlog

from monitor import __version__
from monitor.config import Config, ConfigError, load_config, resolve_config_path
from monitor.jsonl import InputError, stream_lines
from monitor.log import configure_logging

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG, EXIT_TEMPFAIL = 0, 1, 2, 75


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Monitor Arabic news feeds for Kuwait's strategic dialogues with the US and the UK.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $MONITOR_CONFIG, else ./config/monitor.toml, else /etc/monitor/monitor.toml)",
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override [monitor] log_level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("run", help="run the daemon in the foreground (systemd-friendly)").set_defaults(
        func=cmd_run, sends=True
    )

    poll = commands.add_parser("poll", help="one polling pass over all (or the named) feeds, then exit")
    poll.add_argument("--feed", action="append", metavar="ID", help="poll only this feed (repeatable)")
    poll.set_defaults(func=cmd_poll)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply the migrations up to the latest revision").set_defaults(func=cmd_db_upgrade)

    config = commands.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True)
    config.add_parser("check", help="validate and print the effective config (secrets masked)").set_defaults(
        func=cmd_config_check
    )

    feeds = commands.add_parser("feeds", help="feeds").add_subparsers(dest="feeds_command", required=True)
    feeds_list = feeds.add_parser("list", help="each feed's health")
    feeds_list.add_argument("--json", action="store_true", help="one JSON object per feed")
    feeds_list.set_defaults(func=cmd_feeds_list)

    classify = commands.add_parser("classify", help="classify JSON Lines articles (stdin or FILE)")
    classify.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    classify.set_defaults(func=cmd_classify)

    commands.add_parser("reclassify", help="apply changed rules to stored articles").set_defaults(func=cmd_reclassify)

    rules = commands.add_parser("rules", help="review rule changes").add_subparsers(dest="rules_command", required=True)
    rules_diff = rules.add_parser("diff", help="what NEW_CONFIG's rules would change in the stored decisions (stores nothing)")
    rules_diff.add_argument("new_config", metavar="NEW_CONFIG"), rules_diff.add_argument("--json", action="store_true")
    rules_diff.add_argument("--since", metavar="DURATION|DATE", help="only articles first seen at/after: 30d, 2026-11-01")
    rules_diff.set_defaults(func=cmd_rules_diff)
    rules_test = rules.add_parser("test", help="score the rules (of CONFIG, default --config) on the labelled articles")
    rules_test.add_argument("rules_config", nargs="?", metavar="CONFIG"), rules_test.add_argument("--json", action="store_true")
    rules_test.set_defaults(func=cmd_rules_test)
    label = commands.add_parser("label", help="store the analyst's verdict on a stored article (for `rules test`)")
    label.add_argument("article_id", type=int, metavar="ARTICLE_ID"), label.add_argument("verdict", choices=["relevant", "irrelevant"])
    label.add_argument("--watch", metavar="ID"), label.add_argument("--round", type=int, metavar="N")
    label.add_argument("--note", metavar="TEXT", help="why (shown by `rules test`)")
    label.set_defaults(func=cmd_label)

    export = commands.add_parser("export", help="the stored articles as JSON Lines (a contract: see the README)")
    export.add_argument("--since", metavar="DURATION|DATE", help="first seen at/after: 30d, 12h, 2026-11-01, 2026-11-01T08:00Z")
    export.add_argument("--flagged", action="store_true", help="only flagged articles")
    export.add_argument("--watch", metavar="ID", help="only the articles flagged for this watch")
    export.add_argument("--output", metavar="FILE", help="write to FILE, whole or not at all (default: stdout)")
    export.set_defaults(func=cmd_export)

    search = commands.add_parser("search", help='search the stored articles: words, "phrases" (see the README)')
    search.add_argument("query", metavar="QUERY"), search.add_argument("--watch", metavar="ID")
    search.add_argument("--since", metavar="DURATION|DATE"), search.add_argument("--flagged", action="store_true")
    search.add_argument("--limit", type=int, default=20), search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)

    cluster = commands.add_parser("cluster", help="deduplicate and cluster JSON Lines articles (stdin or FILE)")
    cluster.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    cluster.set_defaults(func=cmd_cluster)

    digest = commands.add_parser("digest", help="digests").add_subparsers(dest="digest_command", required=True)
    preview = digest.add_parser("preview", help="render what would be sent now, recording nothing")
    preview.add_argument("digest_id", metavar="DIGEST_ID")
    preview.add_argument("--out", metavar="FILE.html", help="write the HTML here (default: stdout)")
    preview.set_defaults(func=cmd_digest_preview)
    send = digest.add_parser("send", help="build and send the due digest now")
    send.add_argument("digest_id", metavar="DIGEST_ID")
    send.set_defaults(func=cmd_digest_send, sends=True)

    deliveries = commands.add_parser("deliveries", help="the delivery outbox").add_subparsers(
        dest="deliveries_command", required=True
    )
    listing = deliveries.add_parser("list", help="recent deliveries")
    listing.add_argument("--failed", action="store_true", help="only those that gave up")
    listing.set_defaults(func=cmd_deliveries_list)
    retry = deliveries.add_parser("retry", help="queue a failed delivery again and attempt it now")
    retry.add_argument("delivery_id", metavar="ID")
    retry.set_defaults(func=cmd_deliveries_retry, sends=True)

    sources = commands.add_parser("sources", help="sources").add_subparsers(dest="sources_command", required=True)
    check = sources.add_parser("check", help="read one source once and show what it would store (stores nothing)")
    check.add_argument("feed_id", metavar="ID", help="a [[feeds]] id (disabled feeds too)")
    check.add_argument("--json", action="store_true", help="one JSON object for the source, then one per entry")
    check.set_defaults(func=cmd_sources_check)

    status = commands.add_parser("status", help="daemon, feeds, last 24 h, digests, outbox, database on one screen")
    status.add_argument("--json", action="store_true", help="one JSON object (a contract: see the README)")
    status.set_defaults(func=cmd_status)

    secret = commands.add_parser("secret", help="secrets").add_subparsers(dest="secret_command", required=True)
    secret.add_parser("new", help="print a fresh webhook signing secret (whsec_...)").set_defaults(
        func=cmd_secret_new, needs_config=False
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level or "info")
    if not getattr(args, "needs_config", True):
        return int(args.func(None, args) or 0)
    path = resolve_config_path(args.config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _fail(f"config error: {exc}", EXIT_CONFIG)
    if not args.log_level:
        configure_logging(config.monitor.log_level)
    try:
        if getattr(args, "sends", False):
            config.require_secrets()
        return int(args.func(config, args) or 0)
    except ConfigError as exc:
        return _fail(f"config error: {exc}", EXIT_CONFIG)
    except InputError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        failure = _database_failure(exc, config.database_url)
        if failure is not None:
            return _fail(str(failure), failure.exit_status)
        # Last resort: still one line for the user; the traceback for whoever debugs it.
        log.debug("unexpected error", exc_info=True)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return _fail(
            f"unexpected error: {type(exc).__name__}{': ' + detail if detail else ''} "
            "(run with --log-level debug to see where)",
            EXIT_PROBLEM,
        )


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"monitor: {message}\n")
    return status


def _database_failure(exc: BaseException, url: str):  # noqa: ANN202 (DatabaseError, imported late)
    """The one-line DatabaseError for a database failure, or None for any other exception.

    Imported here rather than at the top so `classify` and `cluster` start without SQLAlchemy."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from monitor.store.engine import DatabaseError, database_error

    if isinstance(exc, DatabaseError):
        return exc
    if isinstance(exc, (OperationalError, InterfaceError)):
        return database_error(exc, url)
    return None


# -- commands --------------------------------------------------------------------------


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import Daemon

    return asyncio.run(Daemon(config.source, config).run())


def cmd_poll(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import open_store
    from monitor.poll import Poller, summarise

    known = {feed.id for feed in config.feeds}
    for feed_id in args.feed or []:
        if feed_id not in known:
            sys.stderr.write(f"monitor: unknown feed {feed_id!r} (see `monitor feeds list`)\n")
            return EXIT_CONFIG
    store = open_store(config)
    only = args.feed or [feed.id for feed in config.feeds if feed.enabled]

    async def one_pass() -> list:
        async with Poller(config, store) as poller:
            reports = await poller.poll_due(only=only)
            await poller.index_for_search()
            return reports

    reports = asyncio.run(one_pass())
    out = sys.stdout
    out.write(f"{'FEED':<24} {'STATUS':<13} {'HTTP':>4} {'ENTRIES':>7} {'NEW':>5} {'FLAGGED':>7} {'TIME':>7}  ERROR\n")
    for report in sorted(reports, key=lambda r: r.feed_id):
        out.write(
            f"{report.feed_id:<24} {report.status:<13} {report.http_status or '-':>4} {report.entries:>7} "
            f"{report.new_articles:>5} {report.flagged:>7} {report.seconds:>6.2f}s  {report.error or ''}\n"
        )
    totals = summarise(reports)
    out.write(
        f"{totals['feeds']} feeds polled, {totals['failed']} failed, {totals['new']} new articles, "
        f"{totals['flagged']} flagged\n"
    )
    return EXIT_OK


def cmd_db_upgrade(config: Config, args: argparse.Namespace) -> int:
    from monitor.store import current_revision, make_engine, upgrade

    engine = make_engine(config.database_url)
    upgrade(engine)
    sys.stdout.write(f"database at revision {current_revision(engine)}\n")
    return EXIT_OK


def cmd_config_check(config: Config, args: argparse.Namespace) -> int:
    """The effective config as JSON on stdout (so `| jq` works); what was checked beyond the
    file (each channel secret, the database) one line each on stderr."""
    sys.stdout.write(json.dumps(config.effective(), ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()
    status = EXIT_OK
    sys.stderr.write(f"monitor: {config.source}: the file is valid\n")
    for problem in config.secret_problems:
        sys.stderr.write(f"monitor: config error: {problem}\n")
        status = EXIT_CONFIG
    if config.channels and not config.secret_problems:
        sys.stderr.write(f"monitor: secrets: all {len(config.secrets)} channel secrets read\n")
    line, db_status = _check_database(config.database_url)
    sys.stderr.write(f"monitor: {line}\n")
    return status or db_status


def _check_database(url: str) -> tuple[str, int]:
    """Connect without migrating or creating anything: a missing SQLite file is reported
    (the daemon creates it), not made here."""
    import os

    from sqlalchemy.engine import make_url

    from monitor.store import current_revision, make_engine
    from monitor.store.engine import DatabaseError, database_error, masked

    if url.startswith("sqlite"):
        database = make_url(url).database or ""
        if not database or database == ":memory:":
            return "database: SQLite in memory: not checked", EXIT_OK
        path = Path(database)
        if not path.exists():
            parent = next((p for p in path.parents if p.exists()), Path("/"))
            if not os.access(parent, os.W_OK | os.X_OK):
                error = DatabaseError(f"SQLite database {path}: {parent} is not writable by this user", temporary=False)
                return f"database error: {error}", error.exit_status
            return f"database: SQLite {path} does not exist yet (`monitor db upgrade` or `run` creates it)", EXIT_OK
    try:
        engine = make_engine(url)
        try:
            revision = current_revision(engine)
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 (reported as one line below)
        failure = _database_failure(exc, url) or database_error(exc, url)
        return f"database error: {failure}", failure.exit_status
    return f"database: {masked(url)} reachable, at revision {revision or 'none (empty)'}", EXIT_OK


def cmd_secret_new(config: None, args: argparse.Namespace) -> int:
    from monitor.delivery import new_webhook_secret

    sys.stdout.write(new_webhook_secret() + "\n")
    return EXIT_OK


def cmd_feeds_list(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import open_store

    store = open_store(config)
    rows = store.feed_health()
    out = sys.stdout
    if args.json:
        for row in rows:
            out.write(json.dumps(_health_json(row), ensure_ascii=False) + "\n")
        return EXIT_OK
    out.write(
        f"{'FEED':<24} {'ON':<3} {'LAST SUCCESS':<20} {'STATUS':<13} {'FAILS':>5} {'NEXT POLL':<20} "
        f"{'ETAG':<4} {'LM':<3} {'ARTICLES':>8}  LAST ERROR\n"
    )
    for row in rows:
        out.write(
            f"{row.id:<24} {'yes' if row.enabled else 'no':<3} {_when(row.last_success_at):<20} "
            f"{(row.last_status or 'never'):<13} {row.consecutive_failures:>5} "
            f"{_when(row.next_poll_at) if row.enabled else '-':<20} "
            f"{'yes' if row.has_etag else 'no':<4} {'yes' if row.has_last_modified else 'no':<3} "
            f"{row.article_count:>8}  {row.last_error or ''}\n"
        )
    return EXIT_OK


def cmd_classify(config: Config, args: argparse.Namespace) -> int:
    from monitor.relevance import classify_lines

    return _jsonl_command(args.file, lambda lines: classify_lines(lines, config.rules))


def cmd_cluster(config: Config, args: argparse.Namespace) -> int:
    from monitor.dedup import cluster_lines

    return _jsonl_command(args.file, lambda lines: cluster_lines(lines, config.dedup, rules=config.rules))


def cmd_reclassify(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import open_store

    store = open_store(config)
    changed = store.reclassify(config.rules)
    sys.stdout.write(f"{changed} articles changed decision\n")
    return EXIT_OK


def cmd_rules_diff(config: Config, args: argparse.Namespace) -> int:
    from monitor.rules_review import rules_diff_command

    return rules_diff_command(config, args.new_config, args.since, args.json, sys.stdout, sys.stderr)


def cmd_rules_test(config: Config, args: argparse.Namespace) -> int:
    from monitor.rules_review import rules_test_command

    return rules_test_command(config, args.rules_config, args.json, sys.stdout)


def cmd_label(config: Config, args: argparse.Namespace) -> int:
    from monitor.rules_review import label_command

    return label_command(config, args.article_id, args.verdict, args.watch, args.round, args.note, sys.stdout, sys.stderr)


def cmd_sources_check(config: Config, args: argparse.Namespace) -> int:
    from monitor.source_check import check_source, write_json, write_text

    try:
        feed = config.feed(args.feed_id)
    except KeyError:
        known = ", ".join(f.id for f in config.feeds) or "none"
        sys.stderr.write(f"monitor: unknown feed {args.feed_id!r} (configured: {known})\n")
        return EXIT_CONFIG
    check = check_source(config, feed)
    (write_json if args.json else write_text)(check, sys.stdout)
    return EXIT_OK if check.ok else EXIT_PROBLEM


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    """The options are checked before the database is opened: a typo costs no connection."""
    import os

    from monitor.daemon import open_store
    from monitor.export import ExportError, export_filter, export_to_file, write_export
    from monitor.models import utcnow

    try:
        wanted = export_filter(args.since, args.flagged, args.watch, [w.id for w in config.watches], utcnow())
        store = open_store(config)
        if args.output:
            export_to_file(store.engine, wanted, Path(args.output))
            return EXIT_OK
        sys.stdout.flush()
        write_export(store.engine, wanted, sys.stdout.buffer)
    except ExportError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except BrokenPipeError:  # the reader left (`| head -1`): stop quietly, and let the exit's flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # of stdout go nowhere
    return EXIT_OK


def cmd_search(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import open_store
    from monitor.search import QueryError, request_from_args, write_results
    from monitor.store.search import search_archive

    try:
        request = request_from_args(args, [watch.id for watch in config.watches])
    except QueryError as exc:
        return _fail(f"search: {exc}", EXIT_CONFIG)
    write_results(search_archive(open_store(config).engine, request), request.query, sys.stdout, as_json=args.json)
    return EXIT_OK


def _digest_config(config: Config, digest_id: str):  # noqa: ANN202
    for digest in config.digests:
        if digest.id == digest_id:
            return digest
    known = ", ".join(d.id for d in config.digests) or "none configured"
    raise SystemExit(f"monitor: unknown digest {digest_id!r} (known: {known})")


def cmd_digest_preview(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import open_store
    from monitor.digest import render_html
    from monitor.notify import preview_digest

    digest = _digest_config(config, args.digest_id)
    content = preview_digest(open_store(config), config, digest)
    html = render_html(content, template_dir=getattr(digest, "template_dir", None))
    if args.out:
        Path(args.out).write_text(html, encoding="utf-8")
        sys.stderr.write(f"{content.total} stories; wrote {args.out}\n")
    else:
        sys.stdout.write(html)
    return EXIT_OK


def cmd_digest_send(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import open_store
    from monitor.models import utcnow
    from monitor.notify import build_digest, send_due

    digest = _digest_config(config, args.digest_id)
    store = open_store(config)
    built = build_digest(store, config, digest, utcnow())
    results = asyncio.run(send_due(store, config))
    failed = [row for row in results if row.status != "sent"]
    sys.stdout.write(
        f"digest {digest.id}: {built.stories} stories, {built.deliveries} deliveries queued; "
        f"{len(results) - len(failed)} sent, {len(failed)} not sent\n"
    )
    for row in failed:
        sys.stdout.write(f"  {row.id} {row.channel_id} {row.status}: {row.last_error}\n")
    return EXIT_PROBLEM if failed else EXIT_OK


def cmd_deliveries_list(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import open_store
    from monitor.notify import list_deliveries

    out = sys.stdout
    out.write(f"{'ID':<36} {'KIND':<6} {'SOURCE':<12} {'CHANNEL':<14} {'STATUS':<8} {'TRIES':>5} {'NEXT/SENT':<20}  LAST ERROR\n")
    for row in list_deliveries(open_store(config), failed_only=args.failed):
        when = row.sent_at if row.status == "sent" else row.next_attempt_at
        out.write(
            f"{row.id:<36} {row.kind:<6} {row.source_id:<12} {row.channel_id:<14} {row.status:<8} "
            f"{row.attempts:>5} {_when(when):<20}  {row.last_error or ''}\n"
        )
    return EXIT_OK


def cmd_deliveries_retry(config: Config, args: argparse.Namespace) -> int:
    from monitor.daemon import open_store
    from monitor.notify import retry_delivery, send_due

    store = open_store(config)
    try:
        retry_delivery(store, args.delivery_id)
    except (LookupError, ValueError) as exc:
        sys.stderr.write(f"monitor: {exc}\n")
        return EXIT_PROBLEM
    [row] = asyncio.run(send_due(store, config, only=args.delivery_id))
    sys.stdout.write(f"{row.id}: {row.status}{'' if row.status == 'sent' else ': ' + (row.last_error or '')}\n")
    return EXIT_OK if row.status == "sent" else EXIT_PROBLEM


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from monitor.status import collect_status, open_status_store, render_text, status_json

    status = collect_status(open_status_store(config), config)
    out = json.dumps(status_json(status), ensure_ascii=False) + "\n" if args.json else render_text(status, config.tz)
    sys.stdout.write(out)
    return EXIT_OK


# -- helpers -----------------------------------------------------------------------------


def _jsonl_command(file: str, process: Callable[[Iterator[str]], Iterator[tuple[str | None, str | None]]]) -> int:
    return EXIT_PROBLEM if stream_lines(file, process, sys.stdout, sys.stderr) else EXIT_OK


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "never"


def _health_json(row: object) -> dict[str, object]:
    data = dict(vars(row))
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.isoformat()
    return data
