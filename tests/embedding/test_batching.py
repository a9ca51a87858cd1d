"""The batching queue: concurrent requests share batches, each gets its own rows, the queue is bounded."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import pytest

from embedding import batching
from embedding.batching import BatchOutput, BatchQueue
from services.errors import TooManyRequests


def test_concurrent_requests_are_batched_and_each_gets_its_own_vector(minilm):
    texts = [f"sentence number {i} about {'python' if i % 2 else 'the weather'}" for i in range(24)]
    alone = {t: minilm.http.get(f"/all-MiniLM-L6-v2/{t}").json()["embedding"] for t in texts[:4]}
    queue = minilm.service.engine.queue
    before = queue.batches
    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda t: minilm.http.post("/v1/embeddings", json={"input": t}).json(), texts))
    batches = queue.batches - before
    assert batches < len(texts), f"{len(texts)} concurrent requests ran in {batches} batches"
    vectors = {t: a["data"][0]["embedding"] for t, a in zip(texts, answers, strict=True)}
    for text, vector in alone.items():
        assert np.allclose(vectors[text], vector, atol=1e-5), text
    assert len({round(v[0], 6) for v in vectors.values()}) == len(texts)  # nobody got another's row


class GatedEncoder:
    """A stand-in model function (the queue is generic) whose first batch waits for a gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batch_sizes: list[int] = []

    def __call__(self, key, items):
        self.entered.set()
        if not self.batch_sizes:
            self.gate.wait(10)
        self.batch_sizes.append(len(items))
        vectors = np.array([[float(item), 1.0] for item in items], dtype=np.float32)
        return BatchOutput(vectors, [1] * len(items), [False] * len(items))


async def wait_until_running(encoder: GatedEncoder, queue: BatchQueue) -> None:
    """Until the first batch is inside the (gated) model and nothing waits in the queue."""
    await asyncio.to_thread(encoder.entered.wait, 10)
    assert queue.queued == 0


def run_scenario(merge: bool) -> tuple[list[int], list]:
    async def scenario():
        encoder = GatedEncoder()
        queue = BatchQueue(encoder, max_batch=4, max_wait_s=0.01, max_queued=4, merge=merge)
        queue.start()
        first = asyncio.create_task(queue.submit("text", [0, 1]))
        await wait_until_running(encoder, queue)  # the first batch is now inside the model
        waiting = [asyncio.create_task(queue.submit("text", [i])) for i in (10, 11, 12)]
        await asyncio.sleep(0.01)
        with pytest.raises(TooManyRequests, match="queue is full"):
            await queue.submit("text", [20, 21])  # 3 waiting + 2 > 4
        encoder.gate.set()
        results = [await first, *[await task for task in waiting]]
        await queue.aclose()
        return encoder.batch_sizes, results

    return asyncio.run(scenario())


def test_queue_batches_waiting_requests_together_and_answers_429_when_full():
    sizes, results = run_scenario(merge=True)
    assert sizes == [2, 3]
    assert [r.vectors[:, 0].tolist() for r in results] == [[0, 1], [10], [11], [12]]


def test_queue_without_merging_runs_each_request_alone():
    sizes, results = run_scenario(merge=False)
    assert sizes == [2, 1, 1, 1]
    assert [r.vectors[:, 0].tolist() for r in results] == [[0, 1], [10], [11], [12]]


def test_large_request_is_split_into_batches_and_reassembled_in_order():
    async def scenario():
        encoder = GatedEncoder()
        encoder.gate.set()
        queue = BatchQueue(encoder, max_batch=4, max_wait_s=0, max_queued=100)
        queue.start()
        result = await queue.submit("text", list(range(10)))
        await queue.aclose()
        return encoder.batch_sizes, result

    sizes, result = asyncio.run(scenario())
    assert sizes == [4, 4, 2]
    assert result.vectors[:, 0].tolist() == list(range(10)) and result.tokens == [1] * 10


def test_a_cancelled_request_leaves_the_queue():
    async def scenario():
        encoder = GatedEncoder()
        queue = BatchQueue(encoder, max_batch=4, max_wait_s=0, max_queued=4)
        queue.start()
        first = asyncio.create_task(queue.submit("text", [0]))
        await wait_until_running(encoder, queue)
        gone = asyncio.create_task(queue.submit("text", [1, 2, 3]))
        await asyncio.sleep(0.01)
        gone.cancel()
        encoder.gate.set()
        await first
        await asyncio.sleep(0.05)
        kept = await queue.submit("text", [4, 5, 6, 7])  # room again: the cancelled inputs were dropped
        await queue.aclose()
        return encoder.batch_sizes, kept

    sizes, kept = asyncio.run(scenario())
    assert sizes == [1, 4]
    assert kept.vectors[:, 0].tolist() == [4, 5, 6, 7]


class TimedEncoder:
    """A stand-in model whose every call takes ``seconds``, remembering when each call began and ended."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[tuple[float, float, int]] = []  # (began, ended, inputs)

    def __call__(self, key, items):
        began = time.monotonic()
        time.sleep(self.seconds)
        self.calls.append((began, time.monotonic(), len(items)))
        return BatchOutput(np.zeros((len(items), 2), np.float32), [1] * len(items), [False] * len(items))


def test_clients_a_call_answered_share_the_next_call_when_they_come_back(monkeypatch):
    """Three concurrent clients, one back at once and two a little later: one call for the three, not 1 + 2."""
    monkeypatch.setattr(batching, "FOLLOW_UP_MOST_S", 1.0)  # the window: a quarter of a 0.3 s call

    async def client(queue: BatchQueue, second_after: float) -> None:
        await queue.submit("text", [0])
        await asyncio.sleep(second_after)
        await queue.submit("text", [1])

    async def scenario():
        encoder = TimedEncoder(0.3)
        queue = BatchQueue(encoder, max_batch=8, max_wait_s=0, max_queued=100)
        queue.start()
        await asyncio.gather(client(queue, 0), client(queue, 0.01), client(queue, 0.02))
        await queue.aclose()
        return [inputs for _, _, inputs in encoder.calls]

    assert asyncio.run(scenario()) == [3, 3]


def test_a_lone_client_never_waits_for_others(monkeypatch):
    monkeypatch.setattr(batching, "FOLLOW_UP_MOST_S", 1.0)

    async def scenario():
        encoder = TimedEncoder(0.3)
        queue = BatchQueue(encoder, max_batch=8, max_wait_s=0, max_queued=100)
        queue.start()
        for items in ([0], [1, 2, 3], [4]):  # after a call of 3 inputs, 1: nobody else is coming
            await queue.submit("text", items)
        await queue.submit("text", list(range(20)))  # split over three calls, one request
        await queue.aclose()
        return encoder.calls

    calls = asyncio.run(scenario())
    assert [inputs for _, _, inputs in calls] == [1, 3, 1, 8, 8, 4]
    gaps = [began - ended for (_, ended, _), (began, _, _) in pairwise(calls)]
    assert max(gaps) < 0.05, f"the model waited {max(gaps):.3f} s between a lone client's calls (window: 0.075 s)"
