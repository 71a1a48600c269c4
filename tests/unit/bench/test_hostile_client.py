"""bench.hostile's client: reads the status and Retry-After, keeps the connection, and reconnects once when
the server closes it (Connection: close or a dropped socket)."""

from __future__ import annotations

import asyncio

from bench.hostile import Conn

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
        first = await conn.post("/v1/intent", b"{}")
        second = await conn.post("/v1/intent", b"{}", key="other")  # 408 + close: retried on a new connection
        conn.close()
        server.close()
        return first, second

    first, second = asyncio.run(main())
    assert first == (503, 3.0)
    assert second == (200, None)
    assert len(connections) == 2
    assert b"X-API-Key: k1" in heads[0] and b"X-API-Key: other" in heads[1]
