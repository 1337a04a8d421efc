"""The coalescer behind the drop hot path (``drops.crowd.coalesce``): who goes alone, who goes
together, how a busy coalescer lingers, and whose error reaches whom."""

from __future__ import annotations

import asyncio

import pytest

from dropline.drops.crowd.coalesce import Coalescer


class Recorder:
    """A batch function that records each batch and can hold the first one in flight."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.hold_first = True

    async def run(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(items)
        if self.hold_first and len(self.batches) == 1:
            await self.release.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


def test_a_lone_caller_goes_at_once_and_arrivals_meanwhile_go_together():
    async def scenario() -> None:
        recorder = Recorder()
        coalescer = Coalescer(recorder.run, max_batch=3)
        first = asyncio.ensure_future(coalescer.submit(1))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(coalescer.submit(i)) for i in (2, 3, 4, 5)]
        await asyncio.sleep(0)
        assert recorder.batches == [[1]]  # the others wait for the one in flight
        recorder.release.set()
        assert await first == 10
        assert await asyncio.gather(*rest) == [20, 30, 40, 50]
        assert recorder.batches == [[1], [2, 3, 4], [5]]  # max_batch bounds a batch

    asyncio.run(scenario())


def test_a_busy_coalescer_lingers_for_a_fuller_batch_but_not_forever():
    async def scenario() -> None:
        recorder = Recorder()
        coalescer = Coalescer(recorder.run, max_batch=100, parallel=2, min_batch=5,
                              linger=0.05)
        first = asyncio.ensure_future(coalescer.submit(1))
        await asyncio.sleep(0)
        small = [asyncio.ensure_future(coalescer.submit(i)) for i in (2, 3)]
        await asyncio.sleep(0.01)
        assert recorder.batches == [[1]]  # a free slot, but only 2 of 5 waiting: linger
        assert await asyncio.gather(*small) == [20, 30]  # the linger ran out: they went
        assert recorder.batches == [[1], [2, 3]]
        full = [asyncio.ensure_future(coalescer.submit(i)) for i in range(10, 15)]
        for _ in range(2):  # the submits run, then the batch they started
            await asyncio.sleep(0)
        assert recorder.batches[-1] == [10, 11, 12, 13, 14]  # min_batch reached: no wait
        recorder.release.set()
        await asyncio.gather(first, *full)

    asyncio.run(scenario())


def test_an_items_error_reaches_its_caller_and_a_batch_error_reaches_all():
    async def scenario() -> None:
        recorder = Recorder()
        recorder.hold_first = False
        coalescer = Coalescer(recorder.run, max_batch=10)
        results = await asyncio.gather(coalescer.submit(1), coalescer.submit(-2),
                                       coalescer.submit(3), return_exceptions=True)
        assert results[0] == 10 and results[2] == 30
        assert isinstance(results[1], ValueError) and str(results[1]) == "bad -2"

        async def broken(items: list[int]) -> list[int]:
            raise RuntimeError("database down")

        failing = Coalescer(broken, max_batch=10)
        outcomes = await asyncio.gather(failing.submit(1), failing.submit(2),
                                        return_exceptions=True)
        assert [str(o) for o in outcomes] == ["database down", "database down"]
        with pytest.raises(RuntimeError):
            await failing.submit(3)  # and the coalescer keeps serving afterwards

    asyncio.run(scenario())
