"""The server's side of a worker process: start it, talk to it, notice when it dies."""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import sys
from collections.abc import AsyncGenerator, Callable
from typing import Any

from kernai.backend_envs.declarations import interpreter_environ
from kernai.capabilities import Chunk, Request, Result
from kernai.config import ModelConfig
from kernai.errors import BackendError, InvalidRequest, KernaiError, ModelUnavailable, NotSupported
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
    from_worker_decoder,
)


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; the bare number for a signal Python has no name for (a real-time one)."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


LOAD_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE})
"""Signals that, while a model loads, mean the engine cannot load it here: restarting only crashes again."""
STATUS_TIMEOUT = 5.0
"""Seconds a worker has to answer a status query (the monitor's and the conformance kit's)."""


class WorkerCrashed(ModelUnavailable):
    """The worker process exited while requests were in flight.

    ``fatal`` crashes are not worth a restart: SIGILL (the engine was built for instructions this
    CPU lacks) at any time, and a crash signal while the model loads. Their message names the cause
    and the fix.
    """

    def __init__(self, model: str, returncode: int | None, backend: str = "", loading: bool = False) -> None:
        self.returncode = returncode
        number = -returncode if returncode is not None and returncode < 0 else None
        self.fatal = number == signal.SIGILL or (loading and number in LOAD_CRASH_SIGNALS)
        if number == signal.SIGILL:
            super().__init__(
                f"The worker of model '{model}' was killed by SIGILL: the engine of backend '{backend}' "
                "uses CPU instructions this machine cannot run. Reinstall the backend so that it is built "
                f"for this CPU (`kernai backends install {backend}`, or `bash scripts/install.sh` in a "
                f"kernai checkout), then start the model again (POST /api/v1/instances/{model}/start); "
                "`kernai doctor` checks every backend.",
                code="illegal_instruction",
            )
        elif self.fatal:
            assert number is not None
            super().__init__(
                f"The worker of model '{model}' crashed loading the model (signal {signal_name(number)}): "
                "the model file may be damaged or in a format this version of backend "
                f"'{backend}' cannot read. "
                "Check or reinstall the file, run `kernai doctor` to check the backend, then start the model "
                f"again (POST /api/v1/instances/{model}/start).",
                code="load_crashed",
            )
        else:
            how = f"exit code {returncode}" if returncode is not None and returncode >= 0 else "a signal"
            if number is not None:
                how = f"signal {signal_name(number)}"
            super().__init__(
                f"The worker of model '{model}' stopped ({how}); retry to restart it", code="worker_crashed"
            )


class ModelStopped(ModelUnavailable):
    """The server stopped the worker on purpose (unload, eviction, a config change, shutdown) while
    requests were in flight: not a crash."""

    def __init__(self, model: str, why: str) -> None:
        super().__init__(
            f"Model '{model}' was stopped while the request ran ({why}); "
            "send the request again to load the model again",
            code="model_stopped",
        )


def _error_from(failed: Failed, model: str) -> KernaiError:
    if failed.kind == "not_supported":
        return NotSupported(failed.message, param=failed.param)
    if failed.kind == "invalid_request":
        return InvalidRequest(failed.message, param=failed.param, code=failed.code)
    return BackendError(f"Model '{model}' failed: {failed.message}")


_END = object()


class WorkerClient:
    """One running worker process and the requests in flight to it."""

    def __init__(
        self, config: ModelConfig, plugin: str, on_log: Callable[[str], None], python: str = sys.executable
    ) -> None:
        self.config = config
        self.plugin = plugin
        self.python = python
        """The interpreter the worker runs with: the server's, or a backend environment's."""
        self.on_log = on_log
        self.process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._queues: dict[int, asyncio.Queue[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.exited = asyncio.Event()
        self.closing: str | None = None
        """Why the server is stopping the worker, once it is (``stop`` or ``kill``)."""
        self.crash: WorkerCrashed | None = None
        """Why the process ended, once it has and the server did not stop it."""
        self.ended: ModelUnavailable | None = None
        """The error of the requests the process left unanswered: the crash, or :class:`ModelStopped`."""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None and not self.exited.is_set()

    async def start(self, load_timeout: float) -> float:
        """Start the process and load the model; return the load time in seconds."""
        parent, child = socket.socketpair()
        env = {**interpreter_environ(self.python), **self.config.environment, "PYTHONUNBUFFERED": "1"}
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "kernai.worker",
                "--plugin",
                self.plugin,
                "--backend",
                self.config.backend,
                "--fd",
                str(child.fileno()),
                pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            child.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=parent)
        self._tasks = [
            asyncio.create_task(self._read_frames(reader)),
            asyncio.create_task(self._pump_logs()),
        ]
        loaded: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[0] = loaded
        self._send(Load(self.config))
        try:
            reply = await asyncio.wait_for(loaded, load_timeout)
        except TimeoutError:
            await self.kill()
            raise ModelUnavailable(
                f"Model '{self.config.name}' did not load within {load_timeout:g} s"
            ) from None
        except BaseException:
            await self.kill()
            raise
        return reply.seconds

    def _ended(self, loading: bool = False) -> ModelUnavailable:
        if self.closing is not None:
            return ModelStopped(self.config.name, self.closing)
        returncode = self.process.returncode if self.process else None
        return WorkerCrashed(self.config.name, returncode, self.config.backend, loading)

    def _send(self, message: Any) -> None:
        if self._writer is None or not self.alive:
            raise self.ended or self._ended()
        self._writer.write(frame(message))

    async def _read_frames(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                message = from_worker_decoder.decode(await reader.readexactly(HEADER.unpack(header)[0]))
                self._dispatch(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            await self._on_exit()

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, ChunkFrame):
            if (queue := self._queues.get(message.id)) is not None:
                queue.put_nowait(message.chunk)
        elif isinstance(message, Done):
            if (queue := self._queues.get(message.id)) is not None:
                queue.put_nowait(_END)
        elif isinstance(message, Failed):
            error = _error_from(message, self.config.name)
            if (
                message.id == 0
            ):  # the load: whatever the backend raised, the model cannot serve (503), not a bad request
                error = ModelUnavailable(
                    f"Model '{self.config.name}' failed to load: {message.message}", code="load_failed"
                )
            if (queue := self._queues.get(message.id)) is not None:
                queue.put_nowait(error)
            elif (future := self._futures.pop(message.id, None)) is not None and not future.done():
                future.set_exception(error)
        elif isinstance(message, (ResultFrame, StatusReply)):
            payload = message.result if isinstance(message, ResultFrame) else message.info
            if (future := self._futures.pop(message.id, None)) is not None and not future.done():
                future.set_result(payload)
        elif isinstance(message, Loaded):
            if (future := self._futures.pop(0, None)) is not None and not future.done():
                future.set_result(message)

    async def _pump_logs(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.on_log(line.decode(errors="replace").rstrip("\n"))

    async def _on_exit(self) -> None:
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.ended = error = self._ended(loading=0 in self._futures)
        self.crash = error if isinstance(error, WorkerCrashed) else None
        self.exited.set()
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)
        self._futures.clear()
        for queue in self._queues.values():
            queue.put_nowait(error)

    async def predict(self, request: Request) -> Result:
        """Send a request and wait for its result."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        self._send(Predict(request_id, request))
        try:
            return await future
        except asyncio.CancelledError:
            self._cancel(request_id)
            raise
        finally:
            self._futures.pop(request_id, None)

    async def stream(self, request: Request) -> AsyncGenerator[Chunk, None]:
        """Send a streaming request and yield its chunks; leaving early cancels it in the worker."""
        request_id = next(self._ids)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues[request_id] = queue
        finished = False
        try:
            self._send(Predict(request_id, request))
            while True:
                item = await queue.get()
                if item is _END:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
        finally:
            self._queues.pop(request_id, None)
            if not finished:
                self._cancel(request_id)

    def _cancel(self, request_id: int) -> None:
        if self.alive:
            self._send(Cancel(request_id))

    async def status(self) -> dict[str, Any]:
        """The backend's status facts; :class:`TimeoutError` when the worker does not answer in
        ``STATUS_TIMEOUT`` seconds."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        self._send(StatusQuery(request_id))
        try:
            return await asyncio.wait_for(future, STATUS_TIMEOUT)
        finally:
            self._futures.pop(request_id, None)

    async def stop(self, why: str = "stopped", grace: float = 10.0) -> None:
        """Ask the worker to shut down; kill it if it has not exited after ``grace`` seconds. Requests in
        flight end with :class:`ModelStopped` saying ``why``."""
        self.closing = self.closing or why
        if self.alive:
            try:
                self._send(Shutdown())
                await asyncio.wait_for(self.exited.wait(), grace)
            except (TimeoutError, KernaiError, ConnectionError):
                pass
        await self.kill(why)

    async def kill(self, why: str = "killed") -> None:
        """End the process now; requests in flight end with :class:`ModelStopped` saying ``why``."""
        self.closing = self.closing or why
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
        if self._writer is not None:
            self._writer.close()
        if self.process is not None:
            await self.process.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)
