"""bench.soak_faults' accounting: what counts as lost, as a 5xx on a healthy endpoint, as the failed
model's truthful answer; and the client's retries against a fake server (no model, no timing asserts)."""

from __future__ import annotations

import asyncio
import random

from bench.soak_faults import FAULTY, HEALTHY, Ledger, Pool, merge_ledgers, request


def test_answers_are_classified():
    ledger = Ledger()
    assert ledger.answer(HEALTHY, 200, None) == "ok"
    assert ledger.answer(HEALTHY, 503, 2.0) == "retry"  # shed or draining, says when: retried
    assert ledger.answer(HEALTHY, 429, 1.0) == "retry"
    assert ledger.answer(HEALTHY, 503, None, detail="Service Unavailable") == "error"  # 5xx, no way back
    assert ledger.answer(HEALTHY, 500, None) == "error"
    assert ledger.answer(HEALTHY, 413, None) == "error"
    assert ledger.answer(FAULTY, 503, None) == "fault_ok"  # the failed model's truthful answer
    assert ledger.answer(FAULTY, 503, 1.0, loading=True) == "retry"  # a new server still loading
    assert ledger.answer(FAULTY, 503, 1.0) == "error"  # Retry-After on a model that cannot come back
    assert ledger.answer(FAULTY, 200, None) == "error"
    c = ledger.counts
    assert (c["errors_5xx"], c["errors_4xx"], c["shed"], c["fault_503"], c["fault_wrong"]) == (2, 1, 2, 1, 2)
    assert c["fault_loading_503"] == 1
    assert ledger.details == {"503 Service Unavailable": 1, "500 ": 1}


def test_a_lost_request_is_counted_and_a_recovered_one_is_not_lost():
    ledger = Ledger()
    ledger.finish(HEALTHY, "lost", None, attempts=7)
    ledger.finish(HEALTHY, "ok", 0.25, attempts=3)  # failed twice, answered on the third attempt
    ledger.finish(HEALTHY, "ok", 0.01, attempts=1)
    row = ledger.row("w", seconds=1.0)
    assert (row["requests"], row["lost"], row["ok"], row["retried"], row["recovered"]) == (3, 1, 2, 2, 1)
    assert row["rps"] == 2.0 and row["p99_ms"] > 200  # latency from the schedule, retries included
    total = merge_ledgers([ledger, ledger])
    assert total.counts["lost"] == 2 and len(total.lat_ms) == 4


def _serve(answers):
    """A fake server answering each request with the next of ``answers`` (raw responses; None: close the
    connection without an answer)."""
    seen = []

    async def handler(reader, writer):
        while answers:
            line = await reader.readline()
            if not line:
                break
            length = 0
            while (h := await reader.readline()) not in (b"\r\n", b""):
                if h.lower().startswith(b"content-length:"):
                    length = int(h[15:])
            await reader.readexactly(length)
            seen.append(line)
            answer = answers.pop(0)
            if answer is None:
                break
            writer.write(answer)
            await writer.drain()
        writer.close()

    return handler, seen


def _run(answers, give_up_s):
    async def main():
        handler, seen = _serve(answers)
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        pool = Pool(server.sockets[0].getsockname()[1])
        ledger = Ledger()
        loop = asyncio.get_running_loop()
        await request(pool, HEALTHY, b"{}", ledger, loop.time(), give_up_s, loop, random.Random(0))
        pool.close()
        server.close()
        return ledger, seen

    return asyncio.run(main())


SHED = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 2\r\n\r\n{}"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def test_the_client_retries_a_dropped_connection_and_a_shed_answer_until_answered():
    ledger, seen = _run([None, SHED, OK], give_up_s=30)
    assert len(seen) == 3
    c = ledger.counts
    assert (c["ok"], c["lost"], c["recovered"], c["transport_errors"], c["shed"]) == (1, 0, 1, 1, 1)


def test_a_request_never_answered_before_the_give_up_time_is_lost():
    ledger, _ = _run([None] * 100, give_up_s=0.5)  # every attempt: the connection closes unanswered
    c = ledger.counts
    assert (c["lost"], c["ok"], c["sent"]) == (1, 0, 1) and c["transport_errors"] >= 1
