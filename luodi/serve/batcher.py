"""Dynamic micro-batching for one model: concurrent requests share one predictor call.

A request puts its items on a bounded asyncio queue and awaits their futures. A worker task takes the first
waiting item, then keeps collecting until ``max_batch_size`` items or ``max_wait_ms`` have passed, and runs
the predictor (``list[input] -> list[output]``, the same batched function the Python API uses) in a thread
so the event loop keeps accepting requests meanwhile. Why: a BERT forward pass on 16 queries costs far less
than 16 passes on one, so under load batching buys throughput; when idle, the first item waits at most
``max_wait_ms``.

Bounds, so memory never grows without limit:
- the queue holds at most ``max_queue`` items; a request that does not fit raises ``Overloaded`` (the app
  answers 503 with a Retry-After estimated from the backlog and the recent batch latency);
- each request waits at most ``timeout_s`` (queue + predict); then ``BatchTimeout`` (504) and its items are
  skipped if they have not started;
- load shedding: a request that would wait longer than ``timeout_s`` behind the backlog (queued items x the
  recent predictor time per item) is refused at once with ``Overloaded``, so overload gives fast 503s while
  the admitted requests still finish in time, instead of every request timing out.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

Predictor = Callable[[list[Any]], list[Any]]  # sync (run in a thread) or async (awaited on the loop)


class Overloaded(Exception):
    """The model's queue is full: retry after ``retry_after`` seconds."""

    def __init__(self, model: str, depth: int, retry_after: int):
        super().__init__(f"model {model!r} is overloaded ({depth} items queued); retry after {retry_after} s")
        self.model, self.depth, self.retry_after = model, depth, retry_after


class BatchTimeout(Exception):
    """The request did not finish within the model's timeout."""


class PredictorError(RuntimeError):
    """The predictor raised or returned the wrong number of outputs (a server bug -> 500)."""


@dataclass
class BatchMetrics:
    """Prometheus instruments the batcher feeds (labelled by model); any may be None."""

    batch_size: Any = None  # Histogram: items per predictor call
    queue_depth: Any = None  # Gauge: items waiting
    predict_seconds: Any = None  # Histogram: wall time of one predictor call
    rejected: Any = None  # Counter(model, reason): overloaded / timeout
    queue_seconds: Any = None  # Histogram: per item, time from submit to the start of its predictor call


@dataclass
class _Pending:
    item: Any
    future: asyncio.Future
    queued: float = 0.0  # time.perf_counter() at submit


class MicroBatcher:
    def __init__(
        self,
        name: str,
        predict: Predictor,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        max_queue: int = 512,
        timeout_s: float = 2.0,
        workers: int = 1,
        executor: ThreadPoolExecutor | None = None,
        metrics: BatchMetrics | None = None,
        retry_after_floor: int = 1,
    ):
        self.name = name
        self.predict = predict
        self.is_async = inspect.iscoroutinefunction(predict) or inspect.iscoroutinefunction(
            getattr(predict, "__call__", None)  # noqa: B004 - async callable objects
        )
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.workers = workers
        self.executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"predict-{name}"
        )
        self.metrics = metrics or BatchMetrics()
        self.retry_after_floor = retry_after_floor
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks: list[asyncio.Task] = []
        self._batch_seconds = 0.0  # moving average of one predictor call, for Retry-After
        self._item_seconds = 0.0  # moving average of predictor time per item, for load shedding
        self._batches = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        if self.metrics.queue_depth is not None:
            self.metrics.queue_depth.labels(name).set_function(self.depth)

    # -- lifecycle ------------------------------------------------------------------------------------
    def _ensure_started(self) -> asyncio.Queue:
        # Started lazily on the loop that serves requests (the queue and tasks belong to that loop).
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue(maxsize=self.max_queue)
            self._tasks = [
                loop.create_task(self._worker(), name=f"batcher-{self.name}") for _ in range(self.workers)
            ]
        return self._queue

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._tasks, self._queue, self._loop = [], None, None
        self.executor.shutdown(wait=False, cancel_futures=True)

    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def _would_time_out(self, items: int) -> bool:
        """Shed load early: if the backlog alone needs longer than the timeout, a fast 503 beats a slow 504
        (and the work is not wasted on answers nobody waits for). Needs a few batches of history."""
        if self._item_seconds == 0 or self._batches < 3:
            return False
        # 0.8: keep a fifth of the timeout for what the estimate leaves out (HTTP, JSON, thread hand-offs)
        return items * self._item_seconds / self.workers > 0.8 * self.timeout_s

    def retry_after(self) -> int:
        """Seconds until the backlog has likely drained: batches ahead x recent batch time (at least the floor)."""
        batches_ahead = math.ceil(self.depth() / self.max_batch_size) / self.workers
        return max(self.retry_after_floor, math.ceil(batches_ahead * self._batch_seconds))

    # -- requests -------------------------------------------------------------------------------------
    async def submit(self, item: Any) -> Any:
        return (await self.submit_many([item]))[0]

    async def submit_many(self, items: Sequence[Any]) -> list[Any]:
        """Queue all items of one request (all or none: a half-queued request would only waste work)."""
        queue = self._ensure_started()
        if queue.qsize() + len(items) > self.max_queue or self._would_time_out(queue.qsize() + len(items)):
            self._count_rejected("overloaded")
            raise Overloaded(self.name, queue.qsize(), self.retry_after())
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        pending = [_Pending(item, loop.create_future(), now) for item in items]
        for p in pending:
            queue.put_nowait(p)
        futures = [p.future for p in pending]
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), timeout=self.timeout_s))
        except TimeoutError:
            for f in futures:  # not yet started items are skipped by the worker
                f.cancel()
            self._count_rejected("timeout")
            raise BatchTimeout(
                f"model {self.name!r} did not answer within {self.timeout_s * 1000:.0f} ms"
            ) from None

    def _count_rejected(self, reason: str) -> None:
        if self.metrics.rejected is not None:
            self.metrics.rejected.labels(self.name, reason).inc()

    # -- worker ---------------------------------------------------------------------------------------
    async def _collect(self, queue: asyncio.Queue) -> list[_Pending]:
        batch = [await queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch_size:
            # Take whatever is already waiting without yielding; then wait (at most until the deadline).
            try:
                batch.append(queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return [p for p in batch if not p.future.done()]  # drop items whose request timed out

    async def _worker(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(queue)
            if not batch:
                continue
            inputs = [p.item for p in batch]
            start = time.perf_counter()
            if self.metrics.queue_seconds is not None:
                waited = self.metrics.queue_seconds.labels(self.name)
                for p in batch:
                    waited.observe(start - p.queued)
            try:
                if self.is_async:
                    outputs = await self.predict(inputs)
                else:
                    outputs = await loop.run_in_executor(self.executor, self.predict, inputs)
                outputs = list(outputs)
                if len(outputs) != len(inputs):
                    raise PredictorError(
                        f"predictor {self.name!r} returned {len(outputs)} outputs for {len(inputs)} inputs"
                    )
            except asyncio.CancelledError:
                for p in batch:
                    if not p.future.done():
                        p.future.cancel()
                raise
            except Exception as err:  # noqa: BLE001 - handed to every waiting request
                error = (
                    err
                    if isinstance(err, PredictorError)
                    else PredictorError(f"predictor {self.name!r} failed: {err!r}")
                )
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(error)
                continue
            elapsed = time.perf_counter() - start
            self._batch_seconds = (
                elapsed if self._batch_seconds == 0 else 0.8 * self._batch_seconds + 0.2 * elapsed
            )
            per_item = elapsed / len(inputs)
            self._item_seconds = (
                per_item if self._item_seconds == 0 else 0.8 * self._item_seconds + 0.2 * per_item
            )
            self._batches += 1
            if self.metrics.batch_size is not None:
                self.metrics.batch_size.labels(self.name).observe(len(inputs))
            if self.metrics.predict_seconds is not None:
                self.metrics.predict_seconds.labels(self.name).observe(elapsed)
            for p, out in zip(batch, outputs, strict=True):
                if not p.future.done():
                    p.future.set_result(out)
