"""Encoding 16-bit mono PCM as it is synthesized, sentence by sentence, into one audio file.

``pcm`` and ``wav`` are written directly (a streamed WAV carries the maximum length in its header,
as OpenAI's streamed WAV does); ``mp3`` (LAME), ``flac`` and ``opus`` (in Ogg) go through PyAV,
which also resamples.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import av
import numpy as np

# container, codec, the sample rates the codec accepts (None: any)
_AV_FORMATS: dict[str, tuple[str, str, frozenset[int] | None]] = {
    "mp3": ("mp3", "libmp3lame", frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})),
    "flac": ("flac", "flac", None),
    "opus": ("ogg", "libopus", frozenset({8000, 12000, 16000, 24000, 48000})),
}
CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "pcm": "audio/pcm",
}
FORMATS = tuple(CONTENT_TYPES)


def wav_header(sample_rate: int, data_size: int | None) -> bytes:
    """A 44-byte header of 16-bit mono PCM; ``data_size=None`` for a stream of unknown length."""
    size = 0xFFFFFFFF - 36 if data_size is None else data_size
    return (
        b"RIFF"
        + struct.pack("<I", min(size + 36, 0xFFFFFFFF))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", size)
    )


def output_rate(fmt: str, source_rate: int, wanted: int | None) -> int:
    """The sample rate the output will have: the wanted one, else the source's if the codec takes it."""
    rate = wanted or source_rate
    allowed = _AV_FORMATS[fmt][2] if fmt in _AV_FORMATS else None
    if allowed is not None and rate not in allowed:
        rate = 48000 if fmt == "opus" else min(allowed, key=lambda r: (abs(r - rate), r))
    return rate


class _Sink:
    """A write-only, unseekable file that hands out what was written since the last call."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


class Encoder:
    """Feed int16 sample arrays with :meth:`write`, end with :meth:`finish`; each returns the new bytes.

    With ``streaming`` false the whole file comes from :meth:`finish` with exact lengths in its
    headers; with ``streaming`` true every call returns what can be sent now.
    """

    def __init__(
        self, fmt: str, source_rate: int, sample_rate: int | None = None, *, streaming: bool
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.fmt = fmt
        self.source_rate = source_rate
        self.rate = output_rate(fmt, source_rate, sample_rate)
        self.streaming = streaming
        self.samples = 0
        self._pending: list[bytes] = []
        self._header_sent = False
        self._resampler = (
            av.AudioResampler(format="s16", layout="mono", rate=self.rate)
            if fmt in ("pcm", "wav") and self.rate != source_rate
            else None
        )
        self._container: Any = None
        if fmt in _AV_FORMATS:
            container, codec, _ = _AV_FORMATS[fmt]
            self._sink: Any = _Sink() if streaming else io.BytesIO()
            self._container = av.open(self._sink, mode="w", format=container, buffer_size=4096)
            self._stream = self._container.add_stream(codec, rate=self.rate, layout="mono")

    def _frame(self, samples: np.ndarray) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = self.source_rate
        frame.pts = self.samples
        return frame

    def _pcm(self, samples: np.ndarray | None) -> bytes:
        if self._resampler is None:
            return b"" if samples is None else np.ascontiguousarray(samples, dtype="<i2").tobytes()
        frames = self._resampler.resample(None if samples is None else self._frame(samples))
        return b"".join(frame.to_ndarray().astype("<i2", copy=False).tobytes() for frame in frames)

    def _emit(self, data: bytes) -> bytes:
        if not self.streaming:
            self._pending.append(data)
            return b""
        if self.fmt == "wav" and not self._header_sent:
            self._header_sent = True
            return wav_header(self.rate, None) + data
        return data

    def write(self, samples: np.ndarray) -> bytes:
        """Add samples at the source rate; returns the bytes ready to send (streaming) or ``b""``."""
        if self._container is not None:
            for packet in self._stream.encode(self._frame(samples)):
                self._container.mux(packet)
            self.samples += len(samples)
            return self._sink.take() if self.streaming else b""
        self.samples += len(samples)
        return self._emit(self._pcm(samples))

    def finish(self) -> bytes:
        """Flush the encoder; the remaining bytes (streaming) or the whole file."""
        if self._container is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            return self._sink.take() if self.streaming else self._sink.getvalue()
        tail = self._emit(self._pcm(None))
        if self.streaming:
            return tail
        data = b"".join(self._pending)
        return wav_header(self.rate, len(data)) + data if self.fmt == "wav" else data

    def close(self) -> None:
        """Release the codec if :meth:`finish` was not reached (client gone)."""
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, ValueError):
                pass
            self._container = None
