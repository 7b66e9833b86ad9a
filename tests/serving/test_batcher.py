"""The micro-batcher: concurrent requests coalesce FIFO into bounded batches, each caller gets
exactly its own results, errors reach every caller of a batch, and hopeless requests are shed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from medops.errors import ServiceUnavailableError, ShedError
from medops.serving.batcher import CostModel, MicroBatcher


class Recorder:
    """A batch function that doubles numbers and remembers every batch it saw."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate
        self.started = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append(list(items))
        return [2 * i for i in items]


async def _running(recorder: Recorder) -> None:
    """Wait (without blocking the loop) until the model has started a batch."""
    started = await asyncio.get_running_loop().run_in_executor(None, recorder.started.wait, 5)
    assert started


def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    """200 concurrent single-row requests are scored in far fewer calls, none over the size
    bound, every caller receiving exactly its own result."""
    recorder = Recorder()

    async def scenario() -> list[list[int]]:
        batcher = MicroBatcher(recorder, max_batch_size=16, max_delay_s=0.01)
        try:
            return await asyncio.gather(*(batcher.submit([i], timeout_s=5) for i in range(200)))
        finally:
            await batcher.close()

    results = asyncio.run(scenario())
    assert results == [[2 * i] for i in range(200)]
    assert len(recorder.batches) < 200
    assert max(len(b) for b in recorder.batches) <= 16
    assert sorted(i for b in recorder.batches for i in b) == list(range(200))


def test_a_lone_request_runs_at_once_and_a_stream_waits_for_company() -> None:
    """Requests far apart are not held for the delay bound (nobody would join them); once
    requests come faster than one per delay, the delay applies and they share batches."""
    recorder = Recorder()

    async def scenario() -> tuple[list[float], list[int]]:
        batcher = MicroBatcher(recorder, max_batch_size=64, max_delay_s=0.5)
        try:
            lone = []
            for i in range(3):
                timing: dict[str, float] = {}
                await batcher.submit([i], timeout_s=5, timing=timing)
                lone.append(timing["queue"])
                await asyncio.sleep(0.6)
            before = len(recorder.batches)

            async def later(i: int) -> list[int]:
                await asyncio.sleep(0.01 * i)
                return await batcher.submit([i], timeout_s=5)

            await asyncio.gather(*(later(i) for i in range(10, 30)))
            return lone, [len(b) for b in recorder.batches[before:]]
        finally:
            await batcher.close()

    lone, stream = asyncio.run(scenario())
    assert max(lone) < 0.25, lone  # not held for the 0.5 s bound
    assert len(stream) < 20, stream  # the stream (one every 10 ms) shared batches
    assert sum(stream) == 20


def test_a_caller_alone_in_flight_is_never_held_for_company() -> None:
    """Back-to-back requests of one client (each sent when the last was answered) come
    faster than one per delay, but none can join another's batch: a caller that says it is
    alone (``company=False``) runs at once, where one that says nothing waits the bound."""
    recorder = Recorder()

    async def scenario() -> tuple[list[float], float]:
        batcher = MicroBatcher(recorder, max_batch_size=64, max_delay_s=0.3)
        try:
            alone = []
            for i in range(5):
                timing: dict[str, float] = {}
                await batcher.submit([i], timeout_s=5, timing=timing, company=False)
                alone.append(timing["queue"])
            assert batcher.arrival_gap is not None
            assert batcher.arrival_gap < batcher.max_delay_s  # a stream, by its arrivals
            timing = {}
            await batcher.submit([9], timeout_s=5, timing=timing)
            return alone, timing["queue"]
        finally:
            await batcher.close()

    alone, unsaid = asyncio.run(scenario())
    assert max(alone) < 0.15, alone  # not held for the 0.3 s bound
    assert unsaid >= 0.25  # the same arrival pattern without the hint waits for company


def test_order_is_first_in_first_out_and_multi_row_requests_stay_whole() -> None:
    """Rows reach the model in submission order; a request's rows are never split."""
    gate = threading.Event()
    recorder = Recorder(gate)

    async def scenario() -> list[list[int]]:
        batcher = MicroBatcher(recorder, max_batch_size=5, max_delay_s=0.0)
        first = asyncio.ensure_future(batcher.submit([0], timeout_s=5))
        await _running(recorder)  # the first batch is now running, held by the gate
        rest = [
            asyncio.ensure_future(batcher.submit(rows, timeout_s=5))
            for rows in (
                [1, 2, 3],
                [4, 5],
                [6],
                [7, 8, 9, 10, 11],
            )
        ]
        await asyncio.sleep(0.05)
        gate.set()
        try:
            return await asyncio.gather(first, *rest)
        finally:
            await batcher.close()

    results = asyncio.run(scenario())
    assert results == [[0], [2, 4, 6], [8, 10], [12], [14, 16, 18, 20, 22]]
    # [1, 2, 3] and [4, 5] fill a batch of 5; [6] cannot take [7..11] along without
    # exceeding 5 rows, so it runs alone, and no request is ever split.
    assert recorder.batches == [[0], [1, 2, 3, 4, 5], [6], [7, 8, 9, 10, 11]]


def test_a_failing_batch_fails_each_of_its_callers_and_the_next_batch_runs() -> None:
    """An exception in the model reaches every request of that batch; the batcher goes on."""
    calls = []

    def flaky(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("onnxruntime failed")
        return items

    async def scenario() -> tuple[list[BaseException | list[int]], list[int]]:
        batcher = MicroBatcher(flaky, max_batch_size=8, max_delay_s=0.02)
        try:
            failed = await asyncio.gather(
                *(batcher.submit([i], timeout_s=5) for i in range(3)), return_exceptions=True
            )
            later = await batcher.submit([7], timeout_s=5)
            return failed, later
        finally:
            await batcher.close()

    failed, later = asyncio.run(scenario())
    assert all(isinstance(f, RuntimeError) for f in failed)
    assert later == [7]


def test_requests_that_cannot_meet_their_deadline_are_shed_not_queued() -> None:
    """With the fitted cost at 50 ms per batch, a 10 ms deadline is refused at once with a
    Retry-After, and the model never sees it."""
    recorder = Recorder()

    async def scenario() -> MicroBatcher[int, int]:
        batcher = MicroBatcher(recorder, max_batch_size=4, max_delay_s=0.001)
        batcher.cost.observe(1, 0.05)
        batcher.cost.observe(4, 0.05)
        with pytest.raises(ShedError) as shed:
            await batcher.submit([1], timeout_s=0.01)
        assert shed.value.retry_after > 0
        assert isinstance(shed.value, ServiceUnavailableError)
        assert await batcher.submit([2], timeout_s=1.0) == [4]
        await batcher.close()
        return batcher

    batcher = asyncio.run(scenario())
    assert batcher.stats.shed == 1
    assert recorder.batches == [[2]]


def test_the_cost_model_fits_a_line_through_batch_timings() -> None:
    """Timings of 1 + 0.1 * rows ms are fitted exactly by least squares."""
    model = CostModel()
    for rows in (1, 8, 32, 64, 16):
        model.observe(rows, 0.001 + 0.0001 * rows)
    assert model.fixed == pytest.approx(0.001)
    assert model.per_row == pytest.approx(0.0001)
    assert model.seconds(100) == pytest.approx(0.011)


def test_closing_fails_requests_still_waiting() -> None:
    """Requests queued, and those in the batch running, when the batcher stops get a 503
    error instead of waiting forever."""
    gate = threading.Event()
    recorder = Recorder(gate)

    async def scenario() -> list[BaseException | list[int]]:
        batcher = MicroBatcher(recorder, max_batch_size=1, max_delay_s=0.0)
        running = asyncio.ensure_future(batcher.submit([1], timeout_s=5))
        await _running(recorder)
        waiting = asyncio.ensure_future(batcher.submit([2], timeout_s=5))
        await asyncio.sleep(0.01)
        await batcher.close()
        gate.set()
        first, second = await asyncio.gather(running, waiting, return_exceptions=True)
        return [first, second]

    running, waiting = asyncio.run(scenario())
    assert isinstance(waiting, ServiceUnavailableError)
    assert isinstance(running, ServiceUnavailableError)
