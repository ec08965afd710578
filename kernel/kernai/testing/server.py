"""Run a real kernai server in a subprocess, as users run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KernaiServer:
    """``kernai serve`` on 127.0.0.1 and a free port; use as a context manager.

    Its output goes to ``<data_dir>/server.log``; ``log()`` returns it, for failing tests.
    """

    def __init__(
        self,
        models_dir: Path,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        startup_timeout: float = 60.0,
        python: str | None = None,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.args = args or []
        self.startup_timeout = startup_timeout
        self.python = python or sys.executable
        """The interpreter (and so the environment) the server runs in."""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    def start(self) -> KernaiServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            self.python,
            "-m",
            "kernai",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--models-dir",
            str(self.models_dir),
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kernai serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"kernai serve did not become ready:\n{self.log()}")

    @property
    def running(self) -> bool:
        """Whether the server process is alive (started and not stopped, killed or exited)."""
        return self.process is not None and self.process.poll() is None

    def restart(self) -> KernaiServer:
        """Stop the server if it runs and start it again on the same folders, on a fresh port: another
        process on this machine may have taken the old one meanwhile."""
        self.stop()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        return self.start()

    def client(self, timeout: float | httpx.Timeout | None = 60, **kwargs: Any) -> httpx.Client:
        """An HTTP client for the server; ``kwargs`` go to :class:`httpx.Client` as they are."""
        return httpx.Client(base_url=self.url, timeout=timeout, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or not self.running:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> KernaiServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
