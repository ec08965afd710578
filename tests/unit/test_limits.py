"""The rate limiter's token buckets and a model's admission queue, on a clock the tests move."""

from __future__ import annotations

import asyncio
import math

import pytest

from kernai import limits
from kernai.admission import Admission
from kernai.errors import ModelUnavailable
from kernai.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(limits.time, "monotonic", fake)
    return fake


def test_a_burst_passes_then_the_next_token_comes_at_the_rate(clock: Clock) -> None:
    limiter = RateLimiter(per_minute=60, burst=3)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(1.0)
    assert limiter.wait("a") == pytest.approx(1.0)  # asking takes no token
    clock.now += 0.5
    assert limiter.acquire("a") == pytest.approx(0.5)  # a refused request takes none either
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0 and limiter.wait("a") == pytest.approx(1.0)


def test_tokens_refill_up_to_the_burst_only(clock: Clock) -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    limiter.acquire("a")
    clock.now += 3600
    assert [limiter.acquire("a") for _ in range(3)][-1] == pytest.approx(1.0)


def test_each_client_has_its_own_bucket(clock: Clock) -> None:
    limiter = RateLimiter(per_minute=6, burst=1)
    assert limiter.acquire("a") == 0.0 and limiter.acquire("a") == pytest.approx(10.0)
    assert limiter.acquire("b") == 0.0 and limiter.wait("c") == 0.0


def test_a_zero_rate_never_refills_and_a_zero_burst_is_one(clock: Clock) -> None:
    limiter = RateLimiter(per_minute=0, burst=0)
    assert limiter.acquire("a") == 0.0 and limiter.acquire("a") == math.inf


def test_the_least_recently_seen_clients_are_forgotten_past_the_limit(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_CLIENTS", 2)
    limiter = RateLimiter(per_minute=60, burst=1)
    limiter.acquire("a")
    limiter.acquire("b")
    limiter.acquire("a")  # refused, but seen: now b is the oldest
    limiter.acquire("c")
    assert limiter.wait("b") == 0.0 and limiter.wait("a") > 0  # b was forgotten, a was not


def admission(parallel: int = 1, queue_size: int = 1) -> tuple[Admission, list[str]]:
    refused: list[str] = []
    return Admission("m", parallel, queue_size, on_full=lambda: refused.append("full")), refused


def test_requests_beyond_the_slots_queue_in_order_and_beyond_the_queue_are_refused() -> None:
    async def scenario() -> None:
        gate, refused = admission(parallel=1, queue_size=2)
        order: list[int] = []
        release = asyncio.Event()

        async def request(number: int) -> None:
            async with gate.slot():
                order.append(number)
                await release.wait()

        tasks = [asyncio.create_task(request(n)) for n in range(3)]
        await asyncio.sleep(0)
        assert (gate.running, gate.waiting, gate.idle) == (1, 2, False)
        with pytest.raises(ModelUnavailable) as caught:
            async with gate.slot():
                pass
        assert caught.value.code == "queue_full" and caught.value.status_code == 503
        assert caught.value.message == "Model 'm' is busy: 1 running and 2 queued requests"
        assert caught.value.retry_after == 3 and refused == ["full"]
        release.set()
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2] and gate.idle

    asyncio.run(scenario())


def test_parallel_slots_run_together() -> None:
    async def scenario() -> None:
        gate, _ = admission(parallel=2, queue_size=0)
        entered = asyncio.Event()
        release = asyncio.Event()

        async def request() -> None:
            async with gate.slot():
                if gate.running == 2:
                    entered.set()
                await release.wait()

        tasks = [asyncio.create_task(request()) for _ in range(2)]
        await asyncio.wait_for(entered.wait(), 1)
        with pytest.raises(ModelUnavailable):  # no queue: the third is refused at once
            async with gate.slot():
                pass
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())


def test_a_failing_request_gives_its_slot_back() -> None:
    async def scenario() -> None:
        gate, _ = admission()
        with pytest.raises(RuntimeError):
            async with gate.slot():
                raise RuntimeError("backend failed")
        assert gate.idle
        async with gate.slot():
            assert gate.running == 1

    asyncio.run(scenario())


def test_retry_after_follows_the_average_request_time() -> None:
    gate, _ = admission(parallel=2)
    assert gate.retry_after() == 1
    gate.record(11.0)  # 0.8 * 1 + 0.2 * 11 = 3.0
    assert gate.retry_after() == 2  # ceil(3.0 * 1 / 2)
    gate.waiting = 3
    assert gate.retry_after() == 6
