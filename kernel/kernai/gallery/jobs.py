"""Gallery jobs and their records in SQLite (``<data dir>/gallery.db``), so they outlive the server."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Literal

import msgspec
import psutil
from msgspec import Struct, field


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class Job(Struct, kw_only=True):
    """One install, delete or upgrade of a model or backend, and how far it got."""

    uuid: str
    kind: Literal["model", "backend"]
    op: Literal["install", "delete", "upgrade"]
    element: str
    """The model or backend name the job is about."""
    source: str = ""
    """The gallery id (``gallery@name``) or URL it came from."""
    state: JobState = JobState.QUEUED
    message: str = "queued"
    error: str | None = None
    file_name: str = ""
    downloaded_bytes: int = 0
    file_size_bytes: int = 0
    progress: float = 0.0
    """Percent of the whole job, 0 to 100."""
    cancellable: bool = True
    cancelled: bool = False
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    pid: int = field(default_factory=os.getpid)
    pid_started: float = field(default_factory=lambda: _process_started(os.getpid()))
    """When the process running the job started: with ``pid``, tells it from a later process given the same
    PID."""

    @property
    def finished(self) -> bool:
        return self.state.finished


def new_job(
    kind: Literal["model", "backend"],
    op: Literal["install", "delete", "upgrade"],
    element: str,
    source: str = "",
    cancellable: bool = True,
) -> Job:
    return Job(
        uuid=str(uuidlib.uuid4()), kind=kind, op=op, element=element, source=source, cancellable=cancellable
    )


def interrupt(job: Job, why: str) -> None:
    """Close ``job`` as interrupted: stopped by something other than its user, to be applied again."""
    job.state, job.cancellable = JobState.INTERRUPTED, False
    job.error = job.message = f"interrupted: {why}"


def _process_started(pid: int) -> float:
    return psutil.Process(pid).create_time()


def _running(pid: int, started: float) -> bool:
    """Whether the process that started at ``started`` as ``pid`` still runs (a zombie does not)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() == started
    except psutil.NoSuchProcess:
        return False


class JobStore:
    """Job records in one SQLite file; safe to share between the server and the CLI."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (uuid TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,"
            " created_at REAL NOT NULL, data BLOB NOT NULL)"
        )

    def save(self, job: Job) -> None:
        job.updated_at = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (uuid, kind, state, created_at, data) VALUES (?, ?, ?, ?, ?)",
                (job.uuid, job.kind, job.state.value, job.created_at, msgspec.json.encode(job)),
            )

    def get(self, uuid: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM jobs WHERE uuid = ?", (uuid,)).fetchone()
        return msgspec.json.decode(row[0], type=Job) if row else None

    def list(self, kind: str | None = None) -> list[Job]:
        query = "SELECT data FROM jobs"
        args: tuple[str, ...] = ()
        if kind is not None:
            query, args = query + " WHERE kind = ?", (kind,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at", args).fetchall()
        return [msgspec.json.decode(row[0], type=Job) for row in rows]

    def mark_interrupted(self) -> int:
        """Close the records of unfinished jobs whose process is gone (a server that stopped mid-job)."""
        count = 0
        for job in self.list():
            if not job.finished and job.pid != os.getpid() and not _running(job.pid, job.pid_started):
                interrupt(job, "the process running the job stopped before it finished")
                self.save(job)
                count += 1
        return count

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Reporter:
    """Moves a running job's progress forward: saved at most twice a second, and told to a listener."""

    SAVE_INTERVAL = 0.5

    def __init__(self, job: Job, store: JobStore, listener: Callable[[Job], None] | None = None) -> None:
        self.job = job
        self.store = store
        self.listener = listener
        self._file_index, self._file_count = 0, 1
        self._saved_at = 0.0

    def message(self, text: str) -> None:
        self.job.message = text
        self._changed(force=True)

    def file(self, name: str, index: int, count: int) -> None:
        """Work on file ``index`` (from 0) of ``count`` starts."""
        self._file_index, self._file_count = index, max(count, 1)
        self.job.file_name, self.job.downloaded_bytes, self.job.file_size_bytes = name, 0, 0
        self.job.message = f"downloading {name} ({index + 1}/{count})"
        self.job.progress = 100.0 * index / self._file_count
        self._changed(force=True)

    def bytes(self, done: int, total: int | None) -> None:
        self.job.downloaded_bytes, self.job.file_size_bytes = done, total or 0
        fraction = min(done / total, 1.0) if total else 0.0
        self.job.progress = round(100.0 * (self._file_index + fraction) / self._file_count, 2)
        self._changed()

    def _changed(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._saved_at >= self.SAVE_INTERVAL:
            self._saved_at = now
            self.store.save(self.job)
        if self.listener is not None:
            self.listener(self.job)
