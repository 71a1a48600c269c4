"""The load generator's raw HTTP client: a keep-alive connection the server closed while idle is retried once,
a fresh connection that fails is an error (so a real server failure is never hidden)."""

from __future__ import annotations

import asyncio

import pytest

from bench.load import RawClient, ServerClosedIdle

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


async def serve(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def read_request(reader: asyncio.StreamReader) -> None:
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line[15:])
    await reader.readexactly(length)


def test_idle_connection_closed_by_the_server_is_retried_on_a_new_one():
    connections = []

    async def one_request_per_connection(reader, writer):
        # Answers once, then drops the connection without saying so (as an idle keep-alive timeout does).
        connections.append(writer)
        await read_request(reader)
        writer.write(RESPONSE)
        await writer.drain()
        writer.close()

    async def main():
        server, url = await serve(one_request_per_connection)
        client = RawClient(url, size=1)
        statuses = [await client.post("/x", {"text": "a"}, 0) for _ in range(3)]
        await client.close()
        server.close()
        return statuses

    assert asyncio.run(main()) == [200, 200, 200]
    assert len(connections) == 3  # each reuse found a closed connection and opened a new one


def test_a_fresh_connection_closed_without_an_answer_is_an_error():
    async def hang_up(reader, writer):
        await read_request(reader)
        writer.close()

    async def main():
        server, url = await serve(hang_up)
        client = RawClient(url, size=1)
        try:
            await client.post("/x", {"text": "a"}, 0)
        finally:
            server.close()

    with pytest.raises(ServerClosedIdle):
        asyncio.run(main())
