"""The last stage of the flow: turn flagged stories into digests and alerts, and deliver them.

Exactly once, by construction:
- choosing a digest's stories, recording them (`digest_item`, unique per digest definition
  and story) and queueing one outbox row per channel (`delivery`, with the rendered message)
  is ONE transaction: a crash before it commits leaves the stories for the next digest,
  a crash after it leaves the messages queued;
- the sender works from the outbox and records each outcome; a crash between sending and
  recording re-sends the same message with the same id (Message-ID / webhook-id), which the
  receiver can drop.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from monitor.config import Config
from monitor.delivery import (
    AlertConfig,
    DeliveryResult,
    DigestConfig,
    EmailChannel,
    WebhookChannel,
    secret_key,
    send_email,
    send_webhook,
)
from monitor.digest import (
    DigestContent,
    DigestItem,
    DigestSection,
    alert_payload,
    digest_payload,
    render_alert_email,
    render_email,
)
from monitor.digest_items import digest_items, story_headline, watch_title
from monitor.models import (
    AlertSent,
    Delivery,
    DigestItem as DigestItemRow,
    DigestRun,
    Story,
    utcnow,
)
from monitor.schedule import first_scheduled, latest_slot, missed_slot
from monitor.store import HOST, Store, held_by_dead_process, this_process

log = structlog.get_logger(__name__)

__all__ = ["first_scheduled", "latest_slot", "missed_slot"]  # the schedule, re-exported for the daemon

RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
# How long a claim holds a delivery when nothing renews it (`monitor digest send`, `deliveries
# retry`): far longer than one attempt (SMTP 30 s, webhook 10 s per step). The daemon claims
# for `[monitor] lease` and renews while it sends (renew_delivery_leases).
SEND_LEASE = timedelta(minutes=10)


# -- building (one transaction each) ---------------------------------------------------------


@dataclass(frozen=True)
class BuiltDigest:
    run_id: str | None  # None: this slot was already built (idempotent re-run)
    stories: int
    deliveries: int


def build_digest(store: Store, config: Config, digest: DigestConfig, slot: datetime, now: datetime | None = None) -> BuiltDigest:
    """Select the stories flagged since this definition's previous digest, record them and
    queue the messages. Running it twice for one slot builds nothing the second time."""
    now = now or utcnow()
    bound = log.bind(digest_id=digest.id)
    with store.session() as session:
        existing = session.exec(
            select(DigestRun).where(DigestRun.digest_id == digest.id, DigestRun.slot == slot)
        ).first()
        if existing is not None:
            return BuiltDigest(run_id=None, stories=0, deliveries=0)
        stories = _pending_stories(session, digest, now)
        run = DigestRun(id=_new_id("d"), digest_id=digest.id, slot=slot, created_at=now, story_count=len(stories))
        session.add(run)
        try:
            session.flush()
        except IntegrityError:
            # Another daemon (or `monitor digest send`) built this slot between our look and
            # our insert: normal with several daemons on one database.
            session.rollback()
            bound.debug("digest slot already built by another process", slot=slot.isoformat())
            return BuiltDigest(run_id=None, stories=0, deliveries=0)
        for story in stories:
            session.add(DigestItemRow(run_id=run.id, digest_id=digest.id, story_id=story.id))
        deliveries = 0
        if stories or digest.send_empty:
            items = digest_items(session, config, stories, digest.language)
            for channel_id in digest.channels:
                delivery_id = _new_id("m")
                content = _content(config, digest.id, delivery_id, items, now, digest.language)
                payload = _render_digest(config, digest, channel_id, content)
                session.add(_delivery(delivery_id, "digest", digest.id, channel_id, payload, now, run_id=run.id))
                deliveries += 1
        session.commit()
    bound.info("digest built", run_id=run.id, stories=len(stories), deliveries=deliveries, slot=slot.isoformat())
    return BuiltDigest(run_id=run.id, stories=len(stories), deliveries=deliveries)


def preview_digest(store: Store, config: Config, digest: DigestConfig, now: datetime | None = None) -> DigestContent:
    """What `build_digest` would carry now, recording nothing."""
    now = now or utcnow()
    with store.session() as session:
        items = digest_items(session, config, _pending_stories(session, digest, now), digest.language)
    return _content(config, digest.id, "preview", items, now, digest.language)


def queue_alerts(store: Store, config: Config, now: datetime | None = None) -> int:
    """Queue an alert for each newly flagged story matching an alert rule, once per rule."""
    now = now or utcnow()
    queued = 0
    with store.session() as session:
        for alert in config.alerts:
            sent = select(AlertSent.story_id).where(AlertSent.alert_id == alert.id)
            query = (
                select(Story)
                .where(Story.flagged_at.is_not(None))  # type: ignore[union-attr]
                .where(Story.watch.in_(alert.watches))  # type: ignore[union-attr]
                .where(Story.score >= alert.min_score)
                .where(Story.id.not_in(sent))  # type: ignore[union-attr]
                .where(Story.flagged_at >= now - timedelta(days=2))  # type: ignore[operator]
                .order_by(Story.flagged_at)
            )
            stories = list(session.exec(query))
            for story, item in zip(stories, digest_items(session, config, stories, alert.language), strict=True):
                session.add(AlertSent(alert_id=alert.id, story_id=story.id, created_at=now))
                for channel_id in alert.channels:
                    delivery_id = _new_id("a")
                    payload = _render_alert(config, alert, channel_id, item, delivery_id, now)
                    session.add(_delivery(delivery_id, "alert", alert.id, channel_id, payload, now, story_id=story.id))
                    queued += 1
        session.commit()
    if queued:
        log.info("alerts queued", deliveries=queued)
    return queued


def _pending_stories(session: Session, digest: DigestConfig, now: datetime) -> list[Story]:
    carried = select(DigestItemRow.story_id).where(DigestItemRow.digest_id == digest.id)
    query = (
        select(Story)
        .where(Story.flagged_at.is_not(None))  # type: ignore[union-attr]
        .where(Story.flagged_at <= now)  # type: ignore[operator]
        .where(Story.watch.in_(digest.watches))  # type: ignore[union-attr]
        .where(Story.id.not_in(carried))  # type: ignore[union-attr]
        .order_by(Story.watch, Story.flagged_at)
    )
    stories = list(session.exec(query))
    if digest.max_age is not None:
        oldest = now - digest.max_age
        stories = [story for story in stories if story_headline(session, story).published_at >= oldest]
    return stories


def _content(config: Config, digest_id: str, delivery_id: str, items: Sequence[DigestItem], now: datetime,
             language: str = "ar") -> DigestContent:
    titles = {watch.id: watch_title(watch, language) for watch in config.watches}
    sections = []
    for watch in [w.id for w in config.watches]:
        chosen = tuple(item for item in items if item.watch == watch)
        if chosen:
            sections.append(DigestSection(watch=watch, title=titles[watch], items=chosen))
    return DigestContent(
        digest_id=digest_id,
        delivery_id=delivery_id,
        generated_at=now,
        timezone=config.monitor.timezone,
        sections=tuple(sections),
        total=len(items),
        language=language,
    )


def _channel(config: Config, channel_id: str) -> EmailChannel | WebhookChannel:
    for channel in config.channels:
        if channel.id == channel_id:
            return channel
    raise LookupError(f"channel {channel_id!r} is not configured")


def _render_digest(config: Config, digest: DigestConfig, channel_id: str, content: DigestContent) -> bytes:
    channel = _channel(config, channel_id)
    if isinstance(channel, EmailChannel):
        message = render_email(
            content,
            sender=channel.from_,
            recipients=channel.to,
            message_id=_message_id(content.delivery_id),
            template_dir=getattr(digest, "template_dir", None),
        )
        return bytes(message)
    return _json_bytes(digest_payload(content))


def _render_alert(config: Config, alert: AlertConfig, channel_id: str, item: DigestItem, delivery_id: str, now: datetime) -> bytes:
    channel = _channel(config, channel_id)
    if isinstance(channel, EmailChannel):
        message = render_alert_email(
            item,
            alert_id=alert.id,
            sender=channel.from_,
            recipients=channel.to,
            message_id=_message_id(delivery_id),
            generated_at=now,
            timezone=config.monitor.timezone,
            template_dir=alert.template_dir,
            language=alert.language,
        )
        return bytes(message)
    return _json_bytes(alert_payload(item, alert_id=alert.id, delivery_id=delivery_id, generated_at=now, language=alert.language))


def _delivery(
    delivery_id: str,
    kind: str,
    source_id: str,
    channel_id: str,
    payload: bytes,
    now: datetime,
    *,
    run_id: str | None = None,
    story_id: int | None = None,
) -> Delivery:
    return Delivery(
        id=delivery_id,
        kind=kind,
        source_id=source_id,
        run_id=run_id,
        story_id=story_id,
        channel_id=channel_id,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
        give_up_at=now + GIVE_UP_AFTER,
    )


# -- sending ---------------------------------------------------------------------------------


async def send_due(
    store: Store,
    config: Config,
    now: datetime | None = None,
    only: str | None = None,
    *,
    lease: timedelta = SEND_LEASE,
    sending: set[str] | None = None,
) -> list[Delivery]:
    """Attempt every queued delivery whose time has come; record each outcome at once.
    The daemon passes its `lease` and its `sending` set, where each delivery's id stays
    while it is being sent, so that its heartbeat renews that lease (renew_delivery_leases)."""
    now = now or utcnow()
    # The database steps run in a thread: a row lock held elsewhere (another sender's claim,
    # a lease renewal) must never stop the daemon's event loop, whose heartbeat keeps this
    # very delivery's lease and whose polls must go on meanwhile.
    await asyncio.to_thread(_release_dead_leases, store, now)
    done = []
    sending = set() if sending is None else sending
    while (delivery := await asyncio.to_thread(_claim_next, store, now, only, lease)) is not None:
        sending.add(delivery.id)
        try:
            result = await _attempt(config, delivery)
            done.append(await asyncio.to_thread(_record, store, delivery.id, result, now))
        finally:
            sending.discard(delivery.id)
    return done


def renew_delivery_leases(store: Store, owner: str, delivery_ids: Collection[str], until: datetime) -> int:
    """Extend to `until` the leases `owner` holds on the deliveries it is sending, in one
    UPDATE of the rows still leased to it: a sender killed on another host frees its
    deliveries `lease` after its last heartbeat, while a slow send is never taken over.
    Should a stalled heartbeat let a lease lapse mid-send, the other sender sends the same
    message again with the same id (Message-ID, webhook-id), which the receiver drops."""
    if not delivery_ids:
        return 0
    statement = (
        update(Delivery)
        .where(Delivery.lease_owner == owner, Delivery.status == "pending", Delivery.id.in_(sorted(delivery_ids)))  # type: ignore[union-attr]
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    with store.session() as session:
        renewed = session.execute(statement).rowcount
        session.commit()
    return renewed


def _claim_next(store: Store, now: datetime, only: str | None, lease: timedelta = SEND_LEASE) -> Delivery | None:
    """Lease the oldest due delivery to this process, one at a time, just before sending it:
    a second daemon (or `monitor digest send` beside the daemon) then finds it no longer due,
    on PostgreSQL and on SQLite alike, so two senders never send one message. The lease is
    next_attempt_at pushed past any attempt's length; the UPDATE re-checks that the row is
    still due, so of two claims racing for one row only one gets it. A sender that dies
    holds its delivery until a process on its host frees it, or the lease runs out (the
    daemon's: `[monitor] lease` after its last heartbeat)."""
    due = (Delivery.status == "pending", Delivery.next_attempt_at <= now)
    oldest = select(Delivery.id).where(*due).order_by(Delivery.created_at).limit(1)  # type: ignore[arg-type]
    if only is not None:
        oldest = oldest.where(Delivery.id == only)
    if store.engine.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    claim = (
        update(Delivery)
        .where(Delivery.id == oldest.scalar_subquery(), *due)  # type: ignore[arg-type]
        .values(next_attempt_at=now + lease, lease_owner=this_process())
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    with store.session() as session:
        delivery_id = session.execute(claim).scalar()
        row = session.get(Delivery, delivery_id) if delivery_id is not None else None
        session.commit()
        return row


def _release_dead_leases(store: Store, now: datetime) -> None:
    """Deliveries leased by a process of this host that no longer exists (killed while
    sending) are due again at once; the receiver drops the repeat by its id."""
    with store.session() as session:
        rows = session.exec(
            select(Delivery).where(Delivery.status == "pending", Delivery.lease_owner.like(f"{HOST}:%"))  # type: ignore[union-attr]
        ).all()
        freed = 0
        for row in rows:
            if held_by_dead_process(row.lease_owner):
                row.lease_owner, row.next_attempt_at = None, now
                session.add(row)
                freed += 1
        session.commit()
    if freed:
        log.info("released the deliveries of a dead sender", deliveries=freed)


async def _attempt(config: Config, delivery: Delivery) -> DeliveryResult:
    bound = log.bind(delivery_id=delivery.id, channel=delivery.channel_id, kind=delivery.kind)
    try:
        channel = _channel(config, delivery.channel_id)
    except LookupError as exc:
        return DeliveryResult(ok=False, retryable=False, error=str(exc), retry_after=None, status=None)
    try:
        if isinstance(channel, EmailChannel):
            message = email.message_from_bytes(delivery.payload, policy=email.policy.SMTP)
            return await send_email(channel, config.secrets.get(secret_key(channel)), message)  # type: ignore[arg-type]
        return await send_webhook(channel, config.secrets[secret_key(channel)], delivery.id, delivery.payload)
    except Exception as exc:  # noqa: BLE001 (an unexpected error must be recorded, not lose the row)
        bound.exception("delivery attempt raised")
        return DeliveryResult(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}", retry_after=None, status=None)


def _record(store: Store, delivery_id: str, result: DeliveryResult, now: datetime) -> Delivery:
    bound = log.bind(delivery_id=delivery_id)
    with store.session() as session:
        row = session.get(Delivery, delivery_id, with_for_update=True)
        assert row is not None
        if not result.ok and (row.status == "sent" or row.lease_owner not in (None, this_process())):
            # This attempt outlived its lease (a stalled heartbeat) and another sender took
            # the delivery over, or has sent it already: that outcome is the one to keep.
            bound.warning("delivery attempt failed after another sender took it over; not recorded",
                          error=result.error, holder=row.lease_owner, status=row.status)
            session.commit()  # nothing changed: releases the row lock, keeps the row loaded
            return row
        row.attempts += 1
        row.lease_owner = None
        if result.ok:
            row.status, row.sent_at, row.last_error = "sent", now, None
            bound.info("delivered", channel=row.channel_id, attempts=row.attempts)
        else:
            row.last_error = result.error
            delay = min(RETRY_BASE * (2 ** (row.attempts - 1)), RETRY_CAP)
            if result.retry_after:
                delay = max(delay, timedelta(seconds=result.retry_after))
            row.next_attempt_at = now + delay
            if not result.retryable or row.next_attempt_at > row.give_up_at:
                row.status = "failed"
                bound.error(
                    "DELIVERY FAILED — giving up",
                    channel=row.channel_id,
                    attempts=row.attempts,
                    error=result.error,
                    retryable=result.retryable,
                )
            else:
                bound.warning("delivery attempt failed; will retry", error=result.error, next_attempt_at=row.next_attempt_at.isoformat())
        session.add(row)
        session.commit()
        return row


def retry_delivery(store: Store, delivery_id: str, now: datetime | None = None) -> Delivery:
    """`monitor deliveries retry ID`: put a failed (or pending) delivery back in the queue now."""
    now = now or utcnow()
    with store.session() as session:
        row = session.get(Delivery, delivery_id)
        if row is None:
            raise LookupError(f"no delivery {delivery_id!r}")
        if row.status == "sent":
            raise ValueError(f"delivery {delivery_id} was already sent at {row.sent_at}")
        if row.lease_owner is not None and row.next_attempt_at > now:
            raise ValueError(f"delivery {delivery_id} is being sent right now by {row.lease_owner}")
        row.status, row.next_attempt_at, row.give_up_at = "pending", now, now + GIVE_UP_AFTER
        session.add(row)
        session.commit()
        return row


def list_deliveries(store: Store, failed_only: bool = False, limit: int = 200) -> list[Delivery]:
    with store.session() as session:
        query = select(Delivery).order_by(Delivery.created_at.desc()).limit(limit)  # type: ignore[attr-defined]
        if failed_only:
            query = query.where(Delivery.status == "failed")
        return list(session.exec(query))


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _message_id(delivery_id: str) -> str:
    return f"<{delivery_id}@dialogue-monitor>"


def _json_bytes(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
