"""The main loop of a model's worker process: ``python -m kernai.worker --plugin P --backend B --fd N``.

The process loads exactly one plugin, reads frames from the socket it inherited, runs each
``predict`` in a thread pool (``parallel`` threads) and writes replies as they come. It exits when
told to shut down or when the server's end of the socket closes, so it never outlives the server.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import pluggy

from kernai.capabilities import Chunk, Result
from kernai.errors import InvalidRequest, NotSupported
from kernai.plugins import load_plugin
from kernai.worker.protocol import (
    HEADER,
    Cancel,
    ChunkFrame,
    Done,
    Failed,
    Load,
    Loaded,
    Predict,
    ResultFrame,
    Shutdown,
    StatusQuery,
    StatusReply,
    frame,
    to_worker_decoder,
)

log = logging.getLogger("kernai.worker")


def _failure(request_id: int, exc: BaseException) -> Failed:
    if isinstance(exc, NotSupported):
        return Failed(request_id, "not_supported", exc.message, exc.param)
    if isinstance(exc, InvalidRequest):
        return Failed(request_id, "invalid_request", exc.message, exc.param, exc.code)
    return Failed(request_id, "backend_error", f"{type(exc).__name__}: {exc}")


class Worker:
    """Serves one model over one socket."""

    def __init__(self, sock: socket.socket, manager: pluggy.PluginManager, backend: str) -> None:
        self.sock = sock
        self.hook = manager.hook
        self.backend = backend
        self.model: Any = None
        self.pool: ThreadPoolExecutor | None = None
        self.cancelled: set[int] = set()
        self.send_lock = threading.Lock()

    def send(self, message: msgspec.Struct) -> None:
        data = frame(message)
        with self.send_lock:
            self.sock.sendall(data)

    def read_exactly(self, size: int) -> bytes | None:
        buffer = bytearray()
        while len(buffer) < size:
            part = self.sock.recv(size - len(buffer))
            if not part:
                return None
            buffer += part
        return bytes(buffer)

    def run(self) -> None:
        try:
            while (header := self.read_exactly(HEADER.size)) is not None:
                body = self.read_exactly(HEADER.unpack(header)[0])
                if body is None:
                    break
                message = to_worker_decoder.decode(body)
                if isinstance(message, Predict):
                    assert self.pool is not None, "predict before load"
                    self.pool.submit(self.predict, message)
                elif isinstance(message, Cancel):
                    self.cancelled.add(message.id)
                elif isinstance(message, StatusQuery):
                    self.send(StatusReply(message.id, self.status()))
                elif isinstance(message, Load):
                    self.load(message)
                elif isinstance(message, Shutdown):
                    break
        finally:
            self.shutdown()

    def load(self, message: Load) -> None:
        started = time.perf_counter()
        try:
            self.model = self.hook.load(backend=self.backend, config=message.config)
            if self.model is None:
                raise RuntimeError(f"plugin did not load backend '{self.backend}'")
        except BaseException as exc:
            log.exception("loading failed")
            self.send(_failure(0, exc))
            return
        self.pool = ThreadPoolExecutor(max_workers=message.config.parallel, thread_name_prefix="predict")
        self.send(Loaded(time.perf_counter() - started))

    def predict(self, message: Predict) -> None:
        request_id = message.id
        try:
            result: Result | Iterator[Chunk] | None = self.hook.predict(
                backend=self.backend, model=self.model, request=message.request
            )
            if result is None:
                raise NotSupported(f"backend '{self.backend}' did not handle this request")
            if isinstance(result, msgspec.Struct):
                self.send(ResultFrame(request_id, result))
                return
            self.stream(request_id, result)
        except BaseException as exc:
            if not isinstance(exc, InvalidRequest):
                log.exception("predict failed")
            self.send(_failure(request_id, exc))
        finally:
            self.cancelled.discard(request_id)

    def stream(self, request_id: int, chunks: Iterator[Any]) -> None:
        try:
            for chunk in chunks:
                if request_id in self.cancelled:
                    return
                self.send(ChunkFrame(request_id, chunk))
            self.send(Done(request_id))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def status(self) -> dict[str, Any]:
        if self.model is None:
            return {}
        try:
            return self.hook.status(backend=self.backend, model=self.model) or {}
        except Exception as exc:  # status must never kill the worker
            return {"status_error": f"{type(exc).__name__}: {exc}"}

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.model is not None:
            try:
                self.hook.shutdown(backend=self.backend, model=self.model)
            except Exception:
                log.exception("shutdown hook failed")
            self.model = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kernai-worker")
    parser.add_argument("--plugin", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(True)
    Worker(sock, load_plugin(args.plugin), args.backend).run()
    sock.close()
    return 0
