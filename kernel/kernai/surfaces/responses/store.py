"""Stored Open Responses: one SQLite table in the data directory, so ``GET /v1/responses/{id}`` and
``previous_response_id`` work across restarts. Background responses also keep their asyncio task here
while they run, for ``POST /v1/responses/{id}/cancel``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
from litestar.datastructures import State

from kernai.capabilities import ChatMessage
from kernai.settings import Settings
from kernai.surfaces.responses.schemas import ResponseError, ResponseObject

FILE_NAME = "responses.sqlite3"
UNFINISHED = ("queued", "in_progress")


class StoredResponse(msgspec.Struct, kw_only=True):
    """A response and the conversation it ends (its input, then its output), for follow-up requests."""

    response: ResponseObject
    history: list[ChatMessage]
    input_items: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """This request's own input items, with ids, for ``GET /v1/responses/{id}/input_items``."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(StoredResponse)


class ResponseStore:
    """Responses by id, in ``<data dir>/responses.sqlite3``; every write is one transaction."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS responses ("
            " id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, status TEXT NOT NULL, body BLOB NOT NULL)"
        )
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._fail_unfinished()

    def _fail_unfinished(self) -> None:
        """Background responses that were running when the server stopped can never finish."""
        marks = ",".join("?" * len(UNFINISHED))
        for (body,) in self.db.execute(
            f"SELECT body FROM responses WHERE status IN ({marks})", UNFINISHED
        ).fetchall():
            stored = _decoder.decode(body)
            stored.response.status = "failed"
            stored.response.error = ResponseError(
                code="server_error", message="The server stopped before this response finished"
            )
            self.save(stored)

    def save(self, stored: StoredResponse) -> None:
        response = stored.response
        self.db.execute(
            "INSERT OR REPLACE INTO responses (id, created_at, status, body) VALUES (?, ?, ?, ?)",
            (response.id, response.created_at, response.status, _encoder.encode(stored)),
        )

    def get(self, response_id: str) -> StoredResponse | None:
        row = self.db.execute("SELECT body FROM responses WHERE id = ?", (response_id,)).fetchone()
        return _decoder.decode(row[0]) if row else None

    def delete(self, response_id: str) -> bool:
        return self.db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0


def provide_store(state: State, settings: Settings) -> ResponseStore:
    """The app's store, opened on first use."""
    store = state.get("response_store")
    if store is None:
        store = ResponseStore(settings.data_path / FILE_NAME)
        state["response_store"] = store
    return store
