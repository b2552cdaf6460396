"""The adaptive batcher: each caller gets its own rows back under concurrency, a lone request
is not held back, batches form under load, and one bad request fails only itself."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from studio.core.errors import BusyError, InputError
from studio.serving.batcher import BatchConfig, Batcher


class Echo:
    """A runtime that answers each row with itself times two, slowly enough that requests
    pile up while it runs; it records the rows of every call, and refuses a negative row."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, tensors):
        x = tensors["x"]
        with self.lock:
            self.calls.append(len(x))
        if self.delay_s:
            time.sleep(self.delay_s)
        if (x < 0).any():
            raise InputError("negative rows are refused")
        return {"y": x * 2}


def run(coro):
    return asyncio.run(coro)


def test_every_caller_gets_its_own_rows_under_concurrency() -> None:
    echo = Echo(delay_s=0.002)

    async def main() -> list[tuple[np.ndarray, np.ndarray]]:
        batcher = Batcher(echo, BatchConfig(max_batch_size=32))
        sent = [np.full((1 + i % 3, 4), float(i), np.float32) for i in range(300)]
        got = await asyncio.gather(*(batcher.submit({"x": x}) for x in sent))
        await batcher.close()
        return list(zip(sent, [g["y"] for g in got], strict=True))

    for sent, answer in run(main()):
        assert np.array_equal(answer, sent * 2)  # its own rows, in its own order
    assert sum(echo.calls) == sum(1 + i % 3 for i in range(300))
    assert max(echo.calls) > 3  # batches formed: more rows in a call than one request has
    assert max(echo.calls) <= 32 + 2  # and none over the limit (a request is never split)


def test_a_lone_request_is_not_held_back() -> None:
    async def main() -> dict:
        # a delay that, if waited for, would outlast the bound below many times over
        batcher = Batcher(Echo(), BatchConfig(max_batch_delay_s=60.0))
        out = await asyncio.wait_for(batcher.submit({"x": np.ones((1, 2), np.float32)}), 5)
        await batcher.close()
        return out

    assert np.array_equal(run(main())["y"], np.full((1, 2), 2.0))


def test_one_bad_request_fails_only_itself() -> None:
    echo = Echo(delay_s=0.01)

    async def main() -> list:
        batcher = Batcher(echo, BatchConfig(max_batch_size=64))
        sent = [np.full((1, 3), -1.0 if i == 7 else float(i), np.float32) for i in range(20)]
        got = await asyncio.gather(*(batcher.submit({"x": x}) for x in sent),
                                   return_exceptions=True)
        await batcher.close()
        return list(zip(sent, got, strict=True))

    for i, (sent, answer) in enumerate(run(main())):
        if i == 7:
            assert isinstance(answer, InputError)
        else:
            assert np.array_equal(answer["y"], sent * 2)


def test_requests_of_other_shapes_are_not_joined() -> None:
    echo = Echo(delay_s=0.005)

    async def main() -> list:
        batcher = Batcher(echo)
        sent = [np.ones((1, 2 + i % 2), np.float32) * i for i in range(12)]
        got = await asyncio.gather(*(batcher.submit({"x": x}) for x in sent))
        await batcher.close()
        return list(zip(sent, got, strict=True))

    for sent, answer in run(main()):
        assert np.array_equal(answer["y"], sent * 2)


def test_inputs_that_disagree_on_rows_are_refused() -> None:
    async def main() -> None:
        batcher = Batcher(Echo())
        await batcher.submit({"x": np.ones((2, 2)), "z": np.ones((3, 2))})

    with pytest.raises(InputError, match="disagree on the batch size"):
        run(main())


def test_an_output_without_a_batch_axis_is_never_cut_between_callers() -> None:
    def summed(tensors):  # one value for the whole call: it belongs to no single caller
        time.sleep(0.003)
        return {"total": np.asarray(tensors["x"].sum())}

    async def main() -> list:
        batcher = Batcher(summed)
        sent = [np.full((1, 2), float(i), np.float32) for i in range(16)]
        got = await asyncio.gather(*(batcher.submit({"x": x}) for x in sent))
        await batcher.close()
        return list(zip(sent, got, strict=True))

    for sent, answer in run(main()):
        assert float(answer["total"]) == float(sent.sum())  # its own sum, not the batch's


def test_a_full_queue_refuses_at_once_and_closing_fails_the_waiters() -> None:
    gate = threading.Event()

    def stuck(tensors):
        gate.wait(5)
        return {"y": tensors["x"]}

    async def main() -> tuple[list, list]:
        batcher = Batcher(stuck, BatchConfig(max_queue=3))
        first = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}))
        await asyncio.sleep(0.05)  # the worker holds it, in the runtime
        waiting = [asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}))
                   for _ in range(3)]
        await asyncio.sleep(0)
        refused = await asyncio.gather(batcher.submit({"x": np.ones((1, 1))}),
                                       return_exceptions=True)
        gate.set()
        await first
        await batcher.close()
        done = await asyncio.gather(*waiting, return_exceptions=True)
        return refused, done

    refused, done = run(main())
    assert isinstance(refused[0], BusyError)
    # each waiter either ran before the close or was told to send again: none hangs
    assert all(isinstance(d, dict | BusyError) for d in done)


def test_requests_keep_their_order_when_a_batch_is_cut() -> None:
    echo = Echo(delay_s=0.004)

    async def main() -> list[int]:
        batcher = Batcher(echo, BatchConfig(max_batch_size=4))
        order: list[int] = []

        async def one(i: int) -> None:
            await batcher.submit({"x": np.full((3, 1), float(i), np.float32)})
            order.append(i)

        await asyncio.gather(*(one(i) for i in range(12)))
        await batcher.close()
        return order

    assert run(main()) == list(range(12))  # 3-row requests: one per batch, first come first


def test_callers_answered_by_callback_get_their_own_rows_and_errors_once() -> None:
    echo = Echo(delay_s=0.001)

    async def main() -> dict[int, list]:
        batcher = Batcher(echo, BatchConfig(max_batch_size=16))
        answers: dict[int, list] = {i: [] for i in range(60)}

        def done_for(i: int):
            def done(result):
                answers[i].append(result)
                if i == 7:
                    raise RuntimeError("a caller's own bug")  # the batch goes on
            return done

        for i in range(60):  # row -1.0 is refused by the model: that caller alone fails
            value = -1.0 if i == 30 else float(i)
            batcher.send({"x": np.full((1, 2), value, np.float32)}, done_for(i))
        for _ in range(200):
            if all(answers.values()):
                break
            await asyncio.sleep(0.005)
        await batcher.close()
        return answers

    answers = run(main())
    for i, got in answers.items():
        assert len(got) == 1, i  # answered exactly once
        if i == 30:
            assert isinstance(got[0], InputError)
        else:
            assert np.array_equal(got[0]["y"], np.full((1, 2), 2.0 * i, np.float32))
    assert max(echo.calls) > 1  # batched


def test_callers_waiting_by_callback_hear_busy_when_the_queue_closes() -> None:
    async def main() -> list:
        gate = threading.Event()
        batcher = Batcher(lambda t: (gate.wait(5), {"y": t["x"]})[1], BatchConfig())
        got: list = []
        batcher.send({"x": np.zeros((1, 2), np.float32)}, got.append)  # runs, blocked
        await asyncio.sleep(0.05)
        batcher.send({"x": np.ones((1, 2), np.float32)}, got.append)  # waits in the queue
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.05)
        gate.set()
        await closing
        return got

    got = run(main())
    assert len(got) == 2 and all(isinstance(g, BusyError) for g in got)


def test_with_two_workers_two_batches_run_at_once() -> None:
    running, most = [0], [0]
    lock = threading.Lock()

    def slow(tensors):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return {"y": tensors["x"]}

    async def main() -> list[int]:
        batcher = Batcher(slow, BatchConfig(max_batch_size=2, concurrency=2))
        rounds = []
        for _ in range(3):  # both workers go idle, then are both needed again
            most[0] = 0
            await asyncio.gather(*(batcher.submit({"x": np.zeros((1, 1), np.float32)})
                                   for _ in range(4)))
            rounds.append(most[0])
            await asyncio.sleep(0.02)
        await batcher.close()
        return rounds

    assert run(main()) == [2, 2, 2]


def test_requests_taken_for_a_batch_hear_busy_when_closed_mid_gathering() -> None:
    async def main() -> list:
        batcher = Batcher(Echo(), BatchConfig(max_batch_size=8))
        got: list = []
        for _ in range(2):
            batcher.send({"x": np.ones((1, 1), np.float32)}, got.append)
        await asyncio.sleep(0)  # the worker takes both, and yields once for more
        await batcher.close()
        return got

    got = run(main())
    assert len(got) == 2
    assert all(isinstance(g, BusyError) or np.array_equal(g["y"], [[2.0]]) for g in got)
