"""When digests are due: daily slots in local time, and which one a start-up must catch up.

Pure date arithmetic, plus the two small reads and one write the catch-up decision needs."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from monitor.delivery import DigestConfig
from monitor.models import DigestRun, DigestSchedule
from monitor.store import Store

log = structlog.get_logger(__name__)


def latest_slot(at: str, tz: ZoneInfo, now: datetime) -> datetime:
    """The most recent scheduled time of a daily digest at or before `now`, in UTC.

    Built from the local date and wall-clock time, so it follows daylight saving: 07:30 in
    Europe/London is 06:30 UTC in summer and 07:30 UTC in winter. A wall-clock time skipped by
    a spring-forward gap resolves to the instant after the gap."""
    hour, minute = (int(part) for part in at.split(":"))
    local_now = now.astimezone(tz)
    for days_back in (0, 1, 2):
        day: date = local_now.date() - timedelta(days=days_back)
        candidate = datetime.combine(day, time(hour, minute), tzinfo=tz)
        candidate = candidate.astimezone(ZoneInfo("UTC")).astimezone(tz)  # normalise gaps
        if candidate <= local_now:
            return candidate.astimezone(ZoneInfo("UTC"))
    raise AssertionError("unreachable: a daily slot exists within two days")


def missed_slot(store: Store, digest: DigestConfig, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The latest slot if no run has served it and it came after this digest was first
    scheduled: a digest whose time passed while the daemon was down is sent once at start-up,
    not skipped and not sent twice; the slot of the day the monitor is first started, passed
    before it ever ran, is not sent (it would carry nothing the user has missed)."""
    slot = latest_slot(digest.at, tz, now)
    first = first_scheduled(store, digest.id, now)
    with store.session() as session:
        last = session.exec(select(func.max(DigestRun.slot)).where(DigestRun.digest_id == digest.id)).one()
    if last is not None and last >= slot:
        return None
    if slot <= first:
        return None
    return slot


def first_scheduled(store: Store, digest_id: str, now: datetime) -> datetime:
    """When this digest definition was first scheduled, recorded (as `now`) the first time
    it is asked; two daemons starting together agree on whichever wrote first."""
    with store.session() as session:
        known = session.get(DigestSchedule, digest_id)
        if known is not None:
            return known.first_scheduled_at
        session.add(DigestSchedule(digest_id=digest_id, first_scheduled_at=now))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            known = session.get(DigestSchedule, digest_id)
            assert known is not None
            return known.first_scheduled_at
    log.info("digest scheduled for the first time: slots from now on are sent", digest_id=digest_id)
    return now
