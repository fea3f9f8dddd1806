"""Durations as people read them ("1:02:03", "1 day, 0:00:05").

Standard library only and tiny: superctl imports it on its fast path.
"""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` of whole seconds, with ``N day(s), `` in front from a day on."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days} day{'s' if days != 1 else ''}, {text}" if days else text
