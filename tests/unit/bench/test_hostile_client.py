"""bench.hostile's client: reads the status and Retry-After, keeps the connection, and reconnects once when
the server closes it (Connection: close or a dropped socket)."""

from __future__ import annotations

import asyncio

from bench.hostile import Conn, server_ms

SHED = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}"
CLOSE = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


async def read_request(reader) -> bytes:
    head, length = b"", 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        head += line
        if line.lower().startswith(b"content-length:"):
            length = int(line[15:])
    await reader.readexactly(length)
    return head


def test_status_retry_after_and_reconnect():
    answers = [SHED, CLOSE, OK]
    connections, heads = [], []

    async def handler(reader, writer):
        connections.append(writer)
        while answers:
            heads.append(await read_request(reader))
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if answer is CLOSE:
                writer.close()
                return

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        conn = Conn(server.sockets[0].getsockname()[1], key="k1")
        first = await conn.post("/v1/intent", b"{}", rid="n1-0")
        second = await conn.post("/v1/intent", b"{}", key="other")  # 408 + close: retried on a new connection
        conn.close()
        server.close()
        return first, second

    first, second = asyncio.run(main())
    assert first == (503, 3.0)
    assert second == (200, None)
    assert len(connections) == 2
    assert b"X-API-Key: k1" in heads[0] and b"X-API-Key: other" in heads[1]
    assert b"X-Request-ID: n1-0" in heads[0] and b"X-Request-ID" not in heads[1]


def test_server_ms_reads_the_scenarios_own_requests_from_the_access_log(tmp_path):
    log = tmp_path / "serve.log"
    old = '{"request_id": "n1-0", "status": 200, "ms": 9.0}\n'
    log.write_text(old)
    offset = log.stat().st_size
    with log.open("a") as f:
        f.write('{"request_id": "n2-0", "status": 200, "ms": 1.5}\n')
        f.write("2026-12-07 INFO luodi.serve: not a JSON line\n")
        f.write('{"request_id": "n2-1", "status": 503, "ms": 0.4}\n')
        f.write('{"request_id": "other", "status": 200, "ms": 7.0}\n')
    assert server_ms(log, offset, "n2-") == {"n2-0": 1.5, "n2-1": 0.4}
    assert server_ms(log, 0, "n1-") == {"n1-0": 9.0}
