"""The silero VAD ONNX model on onnxruntime, and speech segments from its per-window probabilities.

The segmentation follows silero-vad's ``get_speech_timestamps`` (threshold with hysteresis,
minimum speech and silence durations, padding), without its torch dependency. Uploaded files are
decoded and resampled block by block, so a long file is never held whole in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import av
import numpy as np
import onnxruntime

from kernai import Model
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest

SAMPLE_RATES = {16000: (512, 64), 8000: (256, 32)}
"""Sample rate -> (window, context) in samples, as the model expects them."""
FILE_RATE = 16000


def decode_file(path: str, rate: int = FILE_RATE) -> Iterator[np.ndarray]:
    """Blocks of mono float32 samples at ``rate`` from any audio file PyAV can read."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    try:
        with av.open(path, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InvalidRequest("The file has no audio stream", param="file")
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    yield out.to_ndarray()[0]
            for out in resampler.resample(None):
                yield out.to_ndarray()[0]
    except (av.FFmpegError, ValueError) as exc:
        raise InvalidRequest(
            f"The file is not audio that can be decoded ({getattr(exc, 'strerror', None) or exc})",
            param="file",
        ) from None


def raw_samples(audio: bytes) -> np.ndarray:
    if len(audio) % 4:
        raise InvalidRequest("'audio' must be float32 samples (a multiple of 4 bytes)", param="audio")
    samples = np.frombuffer(audio, dtype="<f4")
    if not np.isfinite(samples).all():
        raise InvalidRequest("'audio' holds NaN or infinite samples", param="audio")
    return samples


class SileroVAD(Model):
    """One ONNX session; each request runs with its own recurrent state."""

    def __init__(self, config: ModelConfig) -> None:
        options = config.options
        self.threshold = float(options["threshold"])
        self.min_speech_ms = int(options["min_speech_duration_ms"])
        self.min_silence_ms = int(options["min_silence_duration_ms"])
        self.speech_pad_ms = int(options["speech_pad_ms"])
        session_options = onnxruntime.SessionOptions()
        session_options.intra_op_num_threads = config.threads or 1
        session_options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(config.model_path), sess_options=session_options, providers=["CPUExecutionProvider"]
        )
        self.path = config.model_path
        self.requests = 0
        self.lock = threading.Lock()

    def probabilities(self, blocks: Iterable[np.ndarray], rate: int) -> tuple[list[float], int]:
        """Speech probability of each window, and the number of samples seen."""
        window, context_size = SAMPLE_RATES[rate]
        state = np.zeros((2, 1, 128), dtype=np.float32)
        context = np.zeros(context_size, dtype=np.float32)
        sr = np.array(rate, dtype=np.int64)
        pending = np.zeros(0, dtype=np.float32)
        probs: list[float] = []
        total = 0

        def run(chunk: np.ndarray) -> None:
            nonlocal state, context
            batch = np.concatenate([context, chunk])[None, :]
            output, state = self.session.run(None, {"input": batch, "state": state, "sr": sr})
            probs.append(float(output[0][0]))
            context = batch[0, -context_size:]

        for block in blocks:
            total += len(block)
            pending = np.concatenate([pending, block.astype(np.float32, copy=False)])
            usable = len(pending) - len(pending) % window
            for start in range(0, usable, window):
                run(pending[start : start + window])
            pending = pending[usable:]
        if len(pending):
            run(np.pad(pending, (0, window - len(pending))))
        return probs, total

    def segments(self, probs: list[float], window: int, rate: int, total: int) -> list[tuple[int, int]]:
        """Speech (start, end) in samples, as silero-vad's ``get_speech_timestamps`` finds them."""
        negative = max(self.threshold - 0.15, 0.01)
        min_speech = rate * self.min_speech_ms / 1000
        min_silence = rate * self.min_silence_ms / 1000
        pad = int(rate * self.speech_pad_ms / 1000)
        speeches: list[list[int]] = []
        triggered, start, silence_start = False, 0, 0
        for index, prob in enumerate(probs):
            position = index * window
            if prob >= self.threshold:
                silence_start = 0
                if not triggered:
                    triggered, start = True, position
                continue
            if triggered and prob < negative:
                silence_start = silence_start or position
                if position - silence_start < min_silence:
                    continue
                if silence_start - start > min_speech:
                    speeches.append([start, silence_start])
                triggered, silence_start = False, 0
        if triggered and total - start > min_speech:
            speeches.append([start, total])
        for index, speech in enumerate(speeches):
            if index == 0:
                speech[0] = max(0, speech[0] - pad)
            if index + 1 < len(speeches):
                following = speeches[index + 1]
                gap = following[0] - speech[1]
                shift = gap // 2 if gap < 2 * pad else pad
                speech[1] += shift
                following[0] = max(0, following[0] - shift)
            else:
                speech[1] = min(total, speech[1] + pad)
        return [(s, e) for s, e in speeches]

    def predict(self, request: cap.Request) -> cap.Result | None:
        return self.detect(request) if isinstance(request, cap.VADRequest) else None

    def detect(self, request: cap.VADRequest) -> cap.VADResult:
        if request.audio_path is not None:
            rate, blocks = FILE_RATE, decode_file(request.audio_path)
        else:
            if request.sample_rate not in SAMPLE_RATES:
                raise InvalidRequest(
                    f"sample_rate {request.sample_rate} is not supported: send 16000 or 8000 Hz "
                    "samples, or upload a file to have it resampled",
                    param="sample_rate",
                )
            rate, blocks = request.sample_rate, iter([raw_samples(request.audio)])
        probs, total = self.probabilities(blocks, rate)
        if total == 0:
            raise InvalidRequest("The audio has no samples", param="audio")
        with self.lock:
            self.requests += 1
        found = self.segments(probs, SAMPLE_RATES[rate][0], rate, total)
        return cap.VADResult(
            [cap.VADSegment(start=round(s / rate, 3), end=round(e / rate, 3)) for s, e in found]
        )

    def status(self) -> dict[str, Any]:
        return {"model": self.path, "threshold": self.threshold, "requests_served": self.requests}
