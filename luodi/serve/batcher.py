"""Dynamic micro-batching for one model: concurrent requests share one predictor call.

A request puts its items in the batcher and awaits their futures. A worker task takes what waits, up to
``max_batch_size`` items and ``max_batch_tokens`` padded tokens per predictor call, and runs the predictor
(``list[input] -> list[output]``, the same batched function the Python API uses) in a thread so the event
loop keeps accepting requests meanwhile. Why: a BERT forward pass on 16 queries costs far less than 16
passes on one, so under load batching buys throughput.

Work is measured in tokens, not items: a transformer's cost grows with the padded length of the batch
(``longest item x items``), so 64 texts of 510 characters cost ~100 times 64 texts of 5. Each item's cost
comes from ``cost(item)`` (characters + 2 for text; the app passes one per model).

- Admission: a request whose own cost is over ``max_request_tokens`` raises ``RequestTooCostly`` (413);
  one that does not fit the queued-token budget ``max_queue_tokens`` (or ``max_queue`` items) raises
  ``Overloaded`` (503 with a Retry-After from the measured drain time), and so does one for which the
  work queued in its lane (from a per-call + per-token model of the recent calls) is over
  ``max_queue_s``, or for which that work, the running calls, its own work and the reorder window would
  pass 0.8 x its timeout. The whole lane counts, not only what is scheduled before the newcomer: what
  it overtakes was admitted on the promise of finishing in time, and a cheap newcomer that jumped the
  queue on a promise about itself alone pushed the costlier items already queued past their deadline
  (under a restart burst on a starved CPU, most of the 504s were the costlier short queries).
  An idle batcher admits every request within the per-request limit: nothing is ahead to shed for.
  A lane with no call history yet (under 3 calls) cannot estimate, so it queues at most
  ``max_cold_items`` items (a couple of full batches) and refuses the rest with ``Overloaded``: a fresh
  server hit by a burst of retrying clients sheds instead of admitting all of it and timing out (504).
  ``warm_up`` runs a few calls before the batcher serves and seeds the history, so the estimate holds
  from the first request.
- Scheduling: items wait per request, and a predictor call takes items round-robin over the waiting
  requests, until ``max_batch_size`` items or ``max_batch_tokens`` padded tokens: a short query that
  arrives behind a huge request rides in the next call instead of waiting for all of it, and one call
  holds the model for a bounded time. Requests that have waited longer than ``reorder_s`` (default 5 %
  of the timeout) go first, earliest deadline first; younger ones cheapest first (cheap items fill a
  call together instead of being padded to a long one), by cost classes a factor of two wide, in
  arrival order within a class. So a request is overtaken only while it is
  young, by at most ``reorder_s`` of work: cheap traffic cannot starve a costlier request, and the
  admission estimate (the lane's queued work) holds for every request it admits.
- Lanes (``long_item_tokens``): items costing that much or more wait in a long lane served by a worker
  thread of its own, with its own measured call model and its own shedding. A call on a long text then
  runs next to the cheap calls instead of in front of them (it held short queries ~100-160 ms here), long
  texts together get one thread of the model's time at most, and a backlog of long texts neither sheds
  nor delays short queries. Without it, one lane serves all.
- Deadlines: each item carries its request's deadline. An item whose request timed out, or whose client
  went away (the request task was cancelled), is dropped before it runs: no work for answers nobody reads.
- No linger when idle: the first item of a batch waits up to ``max_wait_ms`` for company only while
  traffic is dense (the last request arrived within ``max_wait_ms`` of another still unanswered, or
  another call is running); a lone request at an idle batcher runs at once.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import math
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

Predictor = Callable[[list[Any]], list[Any]]  # sync (run in a thread) or async (awaited on the loop)


def text_cost(item: Any) -> int:
    """Tokens one item costs the model: characters + <s> and </s> (the encoders here read characters).
    Dicts: the text fields a predictor encodes (segment's text; match's query and each candidate;
    understand's queries)."""
    if isinstance(item, str):
        return len(item) + 2
    if isinstance(item, dict):
        if "text" in item:
            return len(item["text"]) + 2
        if "queries" in item:  # /v1/understand on queries the caller broke: the assistant reads each
            return sum(len(q) + 2 for q in item["queries"])
        if "query" in item:
            return sum(len(t) + 2 for t in [item["query"], *(item.get("candidates") or [])])
    return 1


class Overloaded(Exception):
    """The model has more work than it can finish in time: retry after ``retry_after`` seconds."""

    def __init__(self, model: str, depth: int, retry_after: int, why: str = ""):
        why = why or f"{depth} items queued"
        super().__init__(f"model {model!r} is overloaded ({why}); retry after {retry_after} s")
        self.model, self.depth, self.retry_after = model, depth, retry_after


class RequestTooCostly(Exception):
    """One request costs more tokens than the per-request limit (-> 413, naming the limit)."""


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
    rejected: Any = None  # Counter(model, reason): overloaded / timeout / too_costly / expired / gone
    queue_seconds: Any = None  # Histogram: per item, time from submit to the start of its predictor call
    queue_tokens: Any = None  # Gauge: tokens waiting


@dataclass
class _Pending:
    item: Any
    future: asyncio.Future
    queued: float  # time.perf_counter() at submit
    deadline: float  # time.perf_counter() after which nobody waits for the answer
    cost: int


class _Lane:
    """One queue of a batcher and the worker(s) that serve it, with its own measured call model.

    A batcher has one lane, or two with ``long_item_tokens``: items costing that much or more wait in the
    long lane and run on its own worker thread, so a call on a long text (100+ ms here) never holds the
    cheap items back: they keep running, on the other core, in calls of their own."""

    def __init__(self, name: str, workers: int, executor: ThreadPoolExecutor, window: float = 4.0):
        self.name, self.workers, self.executor = name, workers, executor
        self.flows: OrderedDict[int, deque[_Pending]] = OrderedDict()  # request -> its waiting items
        self.items = 0  # waiting items
        self.tokens = 0  # their cost
        self.in_flight = 0  # predictor calls running now
        self.running: dict[int, tuple[float, int]] = {}  # call -> (start, padded tokens)
        # Predictor time of one call ~ a + b x padded tokens (a: per-call overhead, b: per token), fitted on
        # exponentially weighted moments of the recent calls; used to shed and for Retry-After.
        self.m = [0.0, 0.0, 0.0, 0.0]  # E[x], E[y], E[x^2], E[xy] with x = tokens, y = seconds
        self.batches = 0
        # Seconds per queued token while the lane is backlogged (one call start to the next, over the
        # items' own costs): what the queue really drains at, padding, calls that pack fewer items than
        # max_batch_size and the hand-offs between calls included, which a + b x padded tokens leaves out
        # (it estimated ~1.0 s for queues that took ~1.4 s on a starved CPU). 0 until measured.
        self.per_token = 0.0
        # The slowest that rate has been over the last ``window`` seconds (a sliding maximum: times and
        # rates, rates decreasing). On a CPU shared with busy processes a call takes
        # 0.15 s, then 0.5 s for a while: a backlog admitted at the mean rate passed the timeout at each
        # slow spell, so admission plans for the slowest recent spell. It costs no throughput: a queue of
        # a call or two keeps the model busy; the rest of an admitted backlog is only latency, and risk.
        self.window = window
        self.slowest: deque[tuple[float, float]] = deque()
        self.wake: asyncio.Event | None = None

    def reset(self) -> None:
        self.flows.clear()
        self.items = self.tokens = 0

    def count(self, p: _Pending, sign: int) -> None:
        self.items += sign
        self.tokens += sign * p.cost

    def observe(self, tokens: int, seconds: float) -> None:
        w = 1.0 if self.batches == 0 else 0.1
        x, y = float(tokens), seconds
        self.m = [(1 - w) * m + w * v for m, v in zip(self.m, (x, y, x * x, x * y), strict=True)]
        self.batches += 1

    def observe_cycle(self, cost: int, seconds: float) -> None:
        """One backlogged cycle: a call on items costing ``cost`` tokens, ``seconds`` until the next began."""
        x = seconds / max(1, cost)
        self.per_token = x if self.per_token == 0 else 0.8 * self.per_token + 0.2 * x
        # each cycle as measured: on a starved CPU a slow spell is often one or two calls long, and a
        # smoothed rate would hide it
        while self.slowest and self.slowest[-1][1] <= x:
            self.slowest.pop()
        self.slowest.append((time.perf_counter(), x))

    def drain_rate(self) -> float:
        """Seconds per queued token to plan with: the slowest rate of the last ``window`` seconds, or the
        mean rate when none is that recent (0 while never measured)."""
        oldest = time.perf_counter() - self.window
        while self.slowest and self.slowest[0][0] < oldest:
            self.slowest.popleft()
        return max(self.per_token, self.slowest[0][1]) if self.slowest else self.per_token

    def call_model(self) -> tuple[float, float]:
        """(a, b): seconds per call and per padded token, from the recent calls."""
        mx, my, mxx, mxy = self.m
        var, cov = mxx - mx * mx, mxy - mx * my
        if var > (0.05 * mx) ** 2 and cov > 0:
            b = cov / var
            return max(0.0, my - b * mx), b
        return my, 0.0  # calls of one size so far: charge it all per call

    def running_left(self) -> float:
        """Expected time left of the calls running now (expected duration less the time they have run)."""
        a, b = self.call_model()
        now = time.perf_counter()
        return sum(max(0.0, a + tokens * b - (now - start)) for start, tokens in self.running.values())

    def order(self, now: float, reorder_s: float) -> list[int]:
        """Requests waiting longer than ``reorder_s`` first, earliest deadline first; then the younger ones,
        cheapest cost class first (a short query is not held behind a long text, and cheap items share a
        call), in arrival order within a class.

        Why the age bound: ordering by cost alone let every later, cheaper arrival overtake a costlier
        request for as long as cheaper ones kept coming; under a retry burst the costlier short queries
        (12-25 tokens among 4-11) waited past their 2 s timeout while the estimate their admission
        relied on counted only what was queued before them. Now a request is overtaken only while it is
        young, so by at most ``reorder_s`` of work, which admission adds to its estimate."""
        oldest = now - reorder_s

        def key(flow_id: int):
            flow = self.flows[flow_id]
            if not flow:
                return (0, -math.inf, flow_id)
            head = flow[0]
            if head.queued < oldest:
                return (0, head.deadline, flow_id)
            # cost classes a factor of two wide, first come first served within one: the order is there to
            # keep short queries from behind long texts, and 9 vs 11 tokens make no difference to a call;
            # by exact cost a storm of 9-token retries overtook every 10- and 11-token query for the whole
            # reorder window (100 ms by default), beside a retry storm (bench.hostile)
            return (1, head.cost.bit_length(), flow_id)

        return sorted(self.flows, key=key)


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
        max_batch_tokens: int | None = None,
        max_queue_tokens: int | None = None,
        max_request_tokens: int | None = None,
        cost: Callable[[Any], int] = text_cost,
        max_queue_s: float | None = None,
        long_item_tokens: int | None = None,
        max_cold_items: int | None = None,
        reorder_s: float | None = None,
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
        self.max_batch_tokens = max_batch_tokens
        self.max_queue_tokens = max_queue_tokens
        self.max_request_tokens = max_request_tokens
        self.cost = cost
        # shed when the measured backlog exceeds this (default: 0.8 x the timeout); lower it to bound the
        # latency of what is admitted rather than only to avoid 504s
        self.max_queue_s = 0.8 * timeout_s if max_queue_s is None else max_queue_s
        # how long a request may be overtaken by cheaper ones (see _Lane.order): a twentieth of the timeout
        self.reorder_s = 0.05 * timeout_s if reorder_s is None else reorder_s
        self.long_item_tokens = long_item_tokens
        # items a lane without call history may queue (None: no bound); see _cold_refusal
        self.max_cold_items = max_cold_items
        self.metrics = metrics or BatchMetrics()
        self.retry_after_floor = retry_after_floor
        # how far back the slowest drain rate counts (see _Lane.slowest): ten timeouts, so a slow spell
        # that came once is planned for until the load has been steady for a while
        window = 10 * timeout_s
        self.lanes = [
            _Lane(
                "short" if long_item_tokens else "all",
                workers,
                executor or ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"predict-{name}"),
                window,
            )
        ]
        if long_item_tokens is not None:
            # one worker: long texts get at most one thread of the model's time, whatever their number
            self.lanes.append(
                _Lane(
                    "long",
                    1,
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"predict-{name}-long"),
                    window,
                )
            )
        self._ids = itertools.count()
        self._items = 0  # waiting items (all lanes)
        self._tokens = 0  # their cost
        self._last_arrival = -math.inf
        self._dense = False  # the last arrival overlapped another within max_wait: worth lingering
        self._open = 0  # requests submitted and not yet answered
        self._tasks: list[asyncio.Task] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        if self.metrics.queue_depth is not None:
            self.metrics.queue_depth.labels(name).set_function(self.depth)
        if self.metrics.queue_tokens is not None:
            self.metrics.queue_tokens.labels(name).set_function(lambda: self._tokens)

    # -- lifecycle ------------------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        # Started lazily on the loop that serves requests (the events and tasks belong to that loop).
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._items = self._tokens = 0
            self._tasks = []
            for lane in self.lanes:
                lane.reset()
                lane.wake = asyncio.Event()
                self._tasks += [
                    loop.create_task(self._worker(lane), name=f"batcher-{self.name}-{lane.name}")
                    for _ in range(lane.workers)
                ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        for lane in self.lanes:
            for flow in lane.flows.values():
                for p in flow:
                    if not p.future.done():
                        p.future.cancel()
            lane.reset()
            lane.wake = None
            lane.executor.shutdown(wait=False, cancel_futures=True)
        self._tasks, self._loop = [], None

    @property
    def _in_flight(self) -> int:
        return sum(lane.in_flight for lane in self.lanes)

    def lane_of(self, cost: int) -> _Lane:
        """The lane an item of ``cost`` waits in."""
        if self.long_item_tokens is not None and cost >= self.long_item_tokens:
            return self.lanes[1]
        return self.lanes[0]

    def _count(self, lane: _Lane, p: _Pending, sign: int) -> None:
        lane.count(p, sign)
        self._items += sign
        self._tokens += sign * p.cost

    def depth(self) -> int:
        return self._items

    def queued_tokens(self) -> int:
        return self._tokens

    # -- admission ------------------------------------------------------------------------------------
    def request_cost(self, items: Sequence[Any]) -> int:
        """Padded tokens if the request ran as one call: its longest item x its items."""
        return max((self.cost(i) for i in items), default=0) * len(items)

    def call_model(self, lane: _Lane | None = None) -> tuple[float, float]:
        """(a, b): seconds per call and per padded token, from the recent calls (of ``lane``; default the
        cheap one)."""
        return (lane or self.lanes[0]).call_model()

    def _work(self, lane: _Lane, items: int, tokens: int) -> float:
        a, b = lane.call_model()
        calls = max(
            math.ceil(items / self.max_batch_size), math.ceil(tokens / (self.max_batch_tokens or math.inf))
        )
        return max(calls * a + tokens * b, tokens * lane.drain_rate())

    def drain_seconds(self, lane: _Lane | None = None) -> float:
        """Measured time to finish everything queued and running in ``lane`` (default: the slowest lane to
        drain); 0 without history."""
        if lane is None:
            return max(self.drain_seconds(la) for la in self.lanes)
        if lane.batches == 0:
            return 0.0
        return (self._work(lane, lane.items, lane.tokens) + lane.running_left()) / lane.workers

    def wait_ahead(self, cost: int, running: bool = True) -> float:
        """Measured time before an item of ``cost`` would start, or before the items it may overtake end:
        the queued work of its lane (all of it: see the module doc, Admission) and the time left of the
        lane's running calls (``running``)."""
        lane = self.lane_of(cost)
        if lane.batches == 0:
            return 0.0
        items, tokens = lane.items, lane.tokens
        # only the calls that fill up before this item's: what still fits in the next call with it does
        # not delay it (a queue shorter than one batch costs no wait, however slow a call is)
        calls = max(
            math.ceil(items / self.max_batch_size), math.ceil(tokens / (self.max_batch_tokens or math.inf))
        )
        full = max(items // self.max_batch_size, tokens // (self.max_batch_tokens or math.inf))
        queued = self._work(lane, items, tokens) * (full / calls) if calls else 0.0
        return (queued + (lane.running_left() if running else 0.0)) / lane.workers

    def retry_after(self, lane: _Lane | None = None) -> int:
        """Seconds until the backlog (of ``lane``, default the slowest) has likely drained (at least the
        floor), with up to 50 % jitter so clients that honour it do not all come back in the same second."""
        drain = self.drain_seconds(lane)
        return max(self.retry_after_floor, math.ceil(drain * random.uniform(1.0, 1.5)))

    def saturated(self) -> bool:
        """True when a new request would surely be refused: the cheap check the app runs before it even
        reads the body (so it asks about the cheapest request: the cheap lane)."""
        if self._items >= self.max_queue:
            return True
        if self.max_queue_tokens is not None and self._tokens >= self.max_queue_tokens:
            return True
        return self.lanes[0].items > 0 and self._shed_by_estimate(3, 0, 1)

    def _shed_by_estimate(self, longest: int, tokens: int, items: int) -> bool:
        # A fast 503 beats a slow 504: if the backlog alone needs longer than the timeout, the work would be
        # wasted on answers nobody waits for. Needs a few calls of history. max_queue_s defaults to 0.8 x
        # the timeout: a fifth kept for what the estimate leaves out (HTTP, JSON, thread hand-offs).
        # A request waits for the lane's backlog (wait_ahead), then its own work; it may be overtaken by
        # cheaper arrivals for reorder_s, and the items it overtakes meanwhile wait for its work too.
        lane = self.lane_of(longest)
        if lane.batches < 3:
            return False
        # max_queue_s bounds the queued work ahead; the call running now is left out of it: it ends within
        # one capped call whatever is decided here, and counting it would refuse cheap requests whenever a
        # long text happens to be running.
        if self.wait_ahead(longest, running=False) > self.max_queue_s:
            return True
        own = self._work(lane, items, tokens) / lane.workers
        return self.wait_ahead(longest) + own + self.reorder_s > 0.8 * self.timeout_s

    def admit(self, items: Sequence[Any]) -> int:
        """Raise RequestTooCostly / Overloaded, or return the request's token cost."""
        costs = [self.cost(i) for i in items]
        cost = sum(costs)
        padded = self.request_cost(items)
        if self.max_request_tokens is not None and padded > self.max_request_tokens:
            self._count_rejected("too_costly")
            raise RequestTooCostly(
                f"this request costs {padded} tokens ({len(items)} items x the longest, {padded // max(1, len(items))} "
                f"tokens); the limit per request is {self.max_request_tokens} (max_request_tokens): send fewer "
                "or shorter texts"
            )
        why, refusing = "", self.lanes[0]
        if self._items + len(items) > self.max_queue:
            why = f"{self._items} items queued"
        elif (
            self.max_queue_tokens is not None
            and self._items > 0
            and self._tokens + cost > self.max_queue_tokens
        ):
            why = f"{self._tokens} tokens queued"
        else:
            # each lane judges the items that would wait in it: long texts are shed by the long lane's
            # backlog alone, and never make a short query look late
            for lane in self.lanes:
                mine = [c for c in costs if self.lane_of(c) is lane]
                if mine and (cold := self._cold_refusal(lane, len(mine))):
                    why, refusing = cold, lane
                    break
                if (
                    mine
                    and (lane.items > 0 or lane.in_flight > 0)
                    and self._shed_by_estimate(max(mine), sum(mine), len(mine))
                ):
                    why, refusing = f"~{self.wait_ahead(max(mine)) * 1000:.0f} ms of work ahead", lane
                    break
        if why:
            self._count_rejected("overloaded")
            raise Overloaded(self.name, self._items, self.retry_after(refusing), why)
        return cost

    def _cold_refusal(self, lane: _Lane, items: int) -> str:
        """Why ``items`` more may not queue in ``lane`` while it has no call history, or "".

        Without history _shed_by_estimate admits everything up to max_queue: a fresh server (a restart)
        that a burst of retrying clients hits at once queued ~500 items, and the last ones waited past the
        timeout (504). Until 3 calls are measured, a couple of full batches is what surely finishes in
        time; the rest get a 503 with Retry-After and come back once the lane has history. The first
        request is always admitted (an idle lane refuses nothing), so history does build up."""
        if self.max_cold_items is None or lane.batches >= 3:
            return ""
        if lane.items == 0 and lane.in_flight == 0:
            return ""
        if lane.items + items <= self.max_cold_items:
            return ""
        return f"{lane.items} items queued before any call time was measured (at most {self.max_cold_items})"

    def warm_up(self, samples: Sequence[Any], calls: int = 4) -> int:
        """Run the predictor on ``samples`` before the batcher serves (a sync predictor; from the thread that
        loads the models, not from the event loop) and seed each lane's call-time history, so shedding by
        estimate and Retry-After hold from the first request. The first call per lane is not recorded (it
        pays one-off costs: allocations, lazy initialisation); then ``calls`` calls alternate between one
        item and a full batch (as many items as max_batch_size and max_batch_tokens allow, at most 16), so
        both the per-call and the per-token cost are fitted. Returns the calls recorded."""
        if self.is_async or calls <= 0:
            return 0  # an async predictor belongs to the serving loop: its lanes start cold (max_cold_items)
        recorded = 0
        for lane in self.lanes:
            mine = [s for s in samples if self.lane_of(self.cost(s)) is lane]
            if not mine:
                continue  # e.g. no long sample: this lane starts cold
            longest = max(self.cost(s) for s in mine)
            full = max(1, min(self.max_batch_size, 16, (self.max_batch_tokens or math.inf) // longest))
            batch = [mine[i % len(mine)] for i in range(full)]
            self.predict(batch)  # not recorded: the cold call
            for k in range(calls):
                inputs = batch[:1] if k % 2 == 0 else batch
                start = time.perf_counter()
                outputs = list(self.predict(inputs))
                elapsed = time.perf_counter() - start
                if len(outputs) != len(inputs):
                    raise PredictorError(
                        f"predictor {self.name!r} returned {len(outputs)} outputs for {len(inputs)} inputs"
                    )
                lane.observe(max(self.cost(i) for i in inputs) * len(inputs), elapsed)
                if k % 2 == 1:  # a full batch: what a backlog drains at, hand-offs between calls aside
                    lane.observe_cycle(sum(self.cost(i) for i in inputs), elapsed)
                recorded += 1
        return recorded

    # -- requests -------------------------------------------------------------------------------------
    async def submit(self, item: Any, timeout_s: float | None = None) -> Any:
        return (await self.submit_many([item], timeout_s))[0]

    async def submit_many(self, items: Sequence[Any], timeout_s: float | None = None) -> list[Any]:
        """Queue all items of one request (all or none: a half-queued request would only waste work).
        ``timeout_s``: this request's deadline from now (at most the model's timeout)."""
        self._ensure_started()
        self.admit(items)
        timeout = self.timeout_s if timeout_s is None else max(0.0, min(timeout_s, self.timeout_s))
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        deadline = now + timeout
        pending = [_Pending(i, loop.create_future(), now, deadline, self.cost(i)) for i in items]
        flows = []  # (lane, flow id): one flow per lane the request has items in
        for lane in self.lanes:
            mine = [p for p in pending if self.lane_of(p.cost) is lane]
            if mine:
                flow = next(self._ids)
                lane.flows[flow] = deque(mine)
                for p in mine:
                    self._count(lane, p, +1)
                flows.append((lane, flow))
                lane.wake.set()
        self._last_arrival, previous = now, self._last_arrival
        # dense traffic: this request overlaps another that arrived within max_wait (a lone request, or one
        # after the previous has been answered, is not worth a wait)
        self._open += 1
        self._dense = self._open > 1 and now - previous <= self.max_wait
        futures = [p.future for p in pending]
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), timeout=timeout))
        except TimeoutError:
            self._count_rejected("timeout")
            raise BatchTimeout(f"model {self.name!r} did not answer within {timeout * 1000:.0f} ms") from None
        finally:
            self._open -= 1
            # Timed out, cancelled (the client went away) or done: whatever of it still waits is dropped
            # now, so it neither runs nor holds queue budget.
            for f in futures:
                if not f.done():
                    f.cancel()
            for lane, flow in flows:
                for p in lane.flows.pop(flow, None) or ():
                    self._count(lane, p, -1)

    def _count_rejected(self, reason: str, n: int = 1) -> None:
        if self.metrics.rejected is not None and n:
            self.metrics.rejected.labels(self.name, reason).inc(n)

    # -- worker ---------------------------------------------------------------------------------------
    def _take(self, lane: _Lane) -> list[_Pending]:
        """Round-robin over the lane's waiting requests, one item each per turn, until the batch is full by
        items or by padded tokens. Items nobody waits for any more are dropped here, before they run."""
        batch: list[_Pending] = []
        longest = 0
        now = time.perf_counter()
        expired = 0
        flows = lane.flows
        while flows and len(batch) < self.max_batch_size:
            took = False
            for flow_id in lane.order(now, self.reorder_s):
                if len(batch) >= self.max_batch_size:
                    break
                flow = flows[flow_id]
                while flow and (flow[0].future.done() or flow[0].deadline <= now):
                    p = flow.popleft()
                    self._count(lane, p, -1)
                    if not p.future.done():  # its deadline passed: the submitter is timing out
                        expired += 1
                        p.future.set_exception(
                            BatchTimeout(
                                f"model {self.name!r}: the request's deadline passed while it waited"
                            )
                        )
                if not flow:
                    del flows[flow_id]
                    continue
                p = flow[0]
                padded = max(longest, p.cost) * (len(batch) + 1)
                if batch and self.max_batch_tokens is not None and padded > self.max_batch_tokens:
                    continue  # a shorter item of another request may still fit
                flow.popleft()
                self._count(lane, p, -1)
                if not flow:
                    del flows[flow_id]
                batch.append(p)
                longest = max(longest, p.cost)
                took = True
            if not took:
                break
        self._count_rejected("expired", expired)
        return batch

    async def _collect(self, lane: _Lane) -> list[_Pending]:
        wake = lane.wake
        while not lane.items:
            wake.clear()
            await wake.wait()
        # Linger for company only when traffic is dense; an idle batcher runs a lone request at once.
        if self.max_wait > 0 and lane.items < self.max_batch_size and (self._dense or lane.in_flight):
            end = time.perf_counter() + self.max_wait
            while lane.items < self.max_batch_size and (remaining := end - time.perf_counter()) > 0:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), remaining)
                except TimeoutError:
                    break
        return self._take(lane)

    async def _worker(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        backlogged = None  # (start, cost) of this worker's last call if items were left waiting behind it
        while True:
            batch = await self._collect(lane)
            if not batch:  # everything taken had expired or was cancelled
                await asyncio.sleep(0)
                continue
            inputs = [p.item for p in batch]
            tokens = max(p.cost for p in batch) * len(batch)
            start = time.perf_counter()
            if backlogged is not None:
                lane.observe_cycle(backlogged[1], start - backlogged[0])
            backlogged = (start, sum(p.cost for p in batch)) if lane.items else None
            if self.metrics.queue_seconds is not None:
                waited = self.metrics.queue_seconds.labels(self.name)
                for p in batch:
                    waited.observe(start - p.queued)
            lane.in_flight += 1
            call = next(self._ids)
            lane.running[call] = (start, tokens)
            try:
                if self.is_async:
                    outputs = await self.predict(inputs)
                else:
                    outputs = await loop.run_in_executor(lane.executor, self.predict, inputs)
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
            finally:
                lane.in_flight -= 1
                del lane.running[call]
            elapsed = time.perf_counter() - start
            lane.observe(tokens, elapsed)
            if not lane.items:  # what waited behind it went away: the next call starts no backlogged cycle
                backlogged = None
            if self.metrics.batch_size is not None:
                self.metrics.batch_size.labels(self.name).observe(len(inputs))
            if self.metrics.predict_seconds is not None:
                self.metrics.predict_seconds.labels(self.name).observe(elapsed)
            for p, out in zip(batch, outputs, strict=True):
                if not p.future.done():
                    p.future.set_result(out)
