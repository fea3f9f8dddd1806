"""``log_timestamps``: an RFC 3339 time, with milliseconds, before each captured line.

The time is when superd read the line (one read's lines share it).
"""

from __future__ import annotations

import time

_cache: list = [None, b""]  # (whole second, its text without the fraction)


def now_stamp(now: float | None = None) -> bytes:
    """``2024-05-01T12:00:00.123+02:00 `` (local time; ``Z`` when that is UTC)."""
    if now is None:
        now = time.time()
    whole = int(now)
    millis = int((now - whole) * 1000)
    if _cache[0] != whole:
        local = time.localtime(whole)
        offset = local.tm_gmtoff or 0
        zone = "Z" if offset == 0 else (f"{'+' if offset >= 0 else '-'}"
                                       f"{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}")
        _cache[0], _cache[1] = whole, (time.strftime("%Y-%m-%dT%H:%M:%S", local), zone)
    base, zone = _cache[1]
    return f"{base}.{millis:03d}{zone} ".encode()


def stamp(buffers: list, raw: bool = False) -> list:
    """Whole lines (or, ``raw``, a piece of an overlong one) with the time in front of each."""
    data = buffers[0] if len(buffers) == 1 and isinstance(buffers[0], bytes) else b"".join(buffers)
    if not data:
        return buffers
    prefix = now_stamp()
    if data.endswith(b"\n"):
        return [prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n"]
    return [prefix + data.replace(b"\n", b"\n" + prefix)]
