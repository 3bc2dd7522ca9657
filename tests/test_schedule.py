"""Digest slots follow local wall-clock time, across daylight-saving changes."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from monitor.notify import latest_slot

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
KUWAIT = ZoneInfo("Asia/Kuwait")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Kuwait has no DST: 07:30 local is 04:30 UTC every day.
        (datetime(2026, 11, 22, 5, 0, tzinfo=UTC), datetime(2026, 11, 22, 4, 30, tzinfo=UTC)),
        (datetime(2026, 11, 22, 4, 29, tzinfo=UTC), datetime(2026, 11, 21, 4, 30, tzinfo=UTC)),
        (datetime(2026, 11, 22, 4, 30, tzinfo=UTC), datetime(2026, 11, 22, 4, 30, tzinfo=UTC)),
    ],
)
def test_kuwait_slots(now: datetime, expected: datetime) -> None:
    assert latest_slot("07:30", KUWAIT, now) == expected


def test_london_summer_and_winter_time() -> None:
    # BST (UTC+1) in July, GMT in December: same wall-clock time, different UTC instants.
    assert latest_slot("07:30", LONDON, datetime(2026, 7, 1, 12, tzinfo=UTC)) == datetime(2026, 7, 1, 6, 30, tzinfo=UTC)
    assert latest_slot("07:30", LONDON, datetime(2026, 12, 1, 12, tzinfo=UTC)) == datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


def test_london_days_of_the_clock_change() -> None:
    # 2026-03-29: clocks go forward at 01:00 GMT; 07:30 BST is 06:30 UTC.
    assert latest_slot("07:30", LONDON, datetime(2026, 3, 29, 7, tzinfo=UTC)) == datetime(2026, 3, 29, 6, 30, tzinfo=UTC)
    # The evening before the change the slot was still 07:30 GMT.
    assert latest_slot("07:30", LONDON, datetime(2026, 3, 29, 6, 0, tzinfo=UTC)) == datetime(2026, 3, 28, 7, 30, tzinfo=UTC)
    # 2026-10-25: clocks go back; 07:30 GMT is 07:30 UTC.
    assert latest_slot("07:30", LONDON, datetime(2026, 10, 25, 8, tzinfo=UTC)) == datetime(2026, 10, 25, 7, 30, tzinfo=UTC)


def test_time_inside_the_spring_forward_gap_still_fires_once() -> None:
    # 01:30 does not exist in London on 2026-03-29; the slot falls just after the gap.
    slot = latest_slot("01:30", LONDON, datetime(2026, 3, 29, 3, tzinfo=UTC))
    assert slot.date().isoformat() == "2026-03-29"
    assert datetime(2026, 3, 29, 0, 0, tzinfo=UTC) <= slot <= datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
