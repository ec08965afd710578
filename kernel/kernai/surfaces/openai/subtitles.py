"""Transcript segments as SubRip (``.srt``) and WebVTT (``.vtt``) subtitles."""

from __future__ import annotations

from collections.abc import Iterable

from kernai.capabilities import Segment


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(segments: Iterable[Segment]) -> str:
    blocks = [
        f"{index}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for index, s in enumerate(segments, start=1)
    ]
    return "\n".join(blocks)


def vtt(segments: Iterable[Segment]) -> str:
    blocks = [
        f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text.strip()}\n" for s in segments
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)
