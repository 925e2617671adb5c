#!/usr/bin/env python3
"""Generate differential.csv: time-window cases judged by Python's zoneinfo.

This is an independent implementation of the window rule, for the Rust test
`time_window_differential.rs` to compare against. Run from this directory:

    python3 generate_differential.py > differential.csv

Python 3.9 or later; zoneinfo reads the system tz database (or the `tzdata`
package when the system has none). The seed is fixed, so a rerun with the
same tz database version produces the same file.
"""

import csv
import random
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

SEED = 20240331
ROWS_RANDOM = 2500
ROWS_NEAR_TRANSITIONS = 3500
DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ZONES = [
    "Europe/Copenhagen",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Havana",
    "America/Santiago",
    "Asia/Beirut",
    "Europe/London",
    "Pacific/Chatham",
    "America/St_Johns",
    "Pacific/Apia",
    "Asia/Kolkata",
    "UTC",
]


def is_open(start, end, zone, days, instant):
    """Apply the window rule to wall-clock time in the zone."""
    local = instant.astimezone(ZoneInfo(zone))
    weekday = local.weekday()  # Monday is 0
    minute = local.hour * 60 + local.minute
    if start < end:
        return weekday in days and start <= minute < end
    previous = (weekday - 1) % 7
    return (weekday in days and minute >= start) or (previous in days and minute < end)


def transitions(zone, first_year, last_year):
    """Find UTC instants where the zone's offset changes, to 15-minute precision."""
    tz = ZoneInfo(zone)
    found = []
    t = datetime(first_year, 1, 1, tzinfo=timezone.utc)
    end = datetime(last_year + 1, 1, 1, tzinfo=timezone.utc)
    step = timedelta(hours=6)
    previous = t.astimezone(tz).utcoffset()
    while t < end:
        following = t + step
        offset = following.astimezone(tz).utcoffset()
        if offset != previous:
            low, high = t, following
            while high - low > timedelta(minutes=15):
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == previous:
                    low = middle
                else:
                    high = middle
            found.append(high)
        previous = offset
        t = following
    return found


def clock(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def random_window(rng):
    # Prefer bounds around midnight and the usual transition hours.
    hot_hours = [0, 1, 2, 3, 22, 23]
    while True:
        if rng.random() < 0.6:
            start = rng.choice(hot_hours) * 60 + rng.choice([0, 15, 30, 45, rng.randrange(60)])
        else:
            start = rng.randrange(24 * 60)
        if rng.random() < 0.1:
            end = 24 * 60
        elif rng.random() < 0.6:
            end = rng.choice(hot_hours) * 60 + rng.choice([0, 15, 30, 45, rng.randrange(60)])
        else:
            end = rng.randrange(24 * 60)
        if start != end:
            break
    days = sorted(rng.sample(range(7), rng.randint(1, 7)))
    return start, end, days


def main():
    rng = random.Random(SEED)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["start", "end", "timezone", "days", "instant", "expected_open"])

    near = {zone: transitions(zone, 2011, 2026) for zone in ZONES}
    epoch_low = int(datetime(2011, 1, 1, tzinfo=timezone.utc).timestamp())
    epoch_high = int(datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp())

    for row in range(ROWS_RANDOM + ROWS_NEAR_TRANSITIONS):
        zone = rng.choice(ZONES)
        start, end, days = random_window(rng)
        if row >= ROWS_RANDOM and near[zone]:
            centre = rng.choice(near[zone])
            instant = centre + timedelta(seconds=rng.randrange(-4 * 3600, 4 * 3600))
        else:
            instant = datetime.fromtimestamp(rng.randrange(epoch_low, epoch_high), tz=timezone.utc)
        expected = is_open(start, end, zone, days, instant)
        writer.writerow([
            clock(start),
            clock(end),
            zone,
            ";".join(DAY_NAMES[d] for d in days),
            instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "1" if expected else "0",
        ])


if __name__ == "__main__":
    main()
