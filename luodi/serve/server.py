"""uvicorn with connection hygiene: what ``luodi serve`` runs (``run(app, config)``).

uvicorn's own options do part of it: ``limit_concurrency`` (requests in progress beyond it -> 503),
``timeout_keep_alive`` (idle keep-alive connections), ``timeout_graceful_shutdown`` (how long in-flight
requests may finish after SIGTERM), ``h11_max_incomplete_event_size`` (request head size, h11 only). What
it lacks is added here:

- a header deadline: uvicorn starts no timer before a request's headers are complete, so a client that
  connects and sends nothing, or trickles its headers, holds a connection for ever. Here the connection
  is closed when the head has not arrived ``http.header_timeout_s`` after the connection (or the
  request's first byte). The body deadline (408) is the app's (``luodi.serve.app``);
- a connection cap: uvicorn's ``limit_concurrency`` answers 503 to *requests* over the limit but keeps
  every connection open; here a connection beyond ``http.max_connections`` is closed at once;
- a drain on SIGTERM: /readyz turns 503 at once (``service.draining``) so a load balancer stops sending,
  the socket stays open ``http.drain_s`` more, then uvicorn's graceful shutdown lets in-flight requests
  finish for at most ``http.graceful_shutdown_s`` and cancels the rest, while requests still waiting for
  their body are answered 503 at once: the process exits in bounded time even with stalled clients. A
  second SIGTERM or SIGINT skips the drain.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import threading
from typing import TypeVar

import uvicorn

from luodi.serve.config import ServeConfig

T = TypeVar("T")

_log = logging.getLogger("luodi.serve")

# Retry-After on both refusals of the transport (a retry helps: the connections or requests in progress drop)
_CLOSE_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b'retry-after: 1\r\ncontent-length: 52\r\n\r\n{"detail": "too many connections; try again later"}\n'
)


async def _over_concurrency(scope, receive, send) -> None:
    """uvicorn's answer beyond ``limit_concurrency``, with Retry-After and a JSON detail like the app's."""
    body = b'{"detail": "too many requests in progress; try again later"}'
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"retry-after", b"1"),
    ]})  # fmt: skip
    await send({"type": "http.response.body", "body": body, "more_body": False})


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a header deadline and a connection cap."""
    from uvicorn.protocols.http import httptools_impl
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    # the protocol module picks this app for a request over limit_concurrency; uvicorn's own says nothing
    # of when to come back
    httptools_impl.service_unavailable = _over_concurrency

    class GuardedHttpTools(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                _log.warning(
                    "connection from %s closed: %d connections open", self.client, len(self.connections)
                )
                transport.write(_CLOSE_503)
                transport.close()
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                _log.warning(
                    "connection from %s closed: no complete request head in %g s",
                    self.client,
                    header_timeout_s,
                )
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()  # a keep-alive connection's next request gets its own deadline

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # between requests the keep-alive timeout governs; disarm in case the head never completed
            self._disarm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHttpTools


class DrainingServer(uvicorn.Server):
    """On the first SIGTERM/SIGINT: /readyz 503 at once, exit ``drain_s`` later (see the module doc)."""

    def __init__(self, config: uvicorn.Config, service, drain_s: float):
        super().__init__(config)
        self.service, self.drain_s = service, drain_s
        self._draining = False

    def handle_exit(self, sig, frame) -> None:
        if self.service is not None:
            self.service.draining = True
        if not self._draining and self.drain_s > 0:
            self._draining = True
            self._captured_signals.append(sig)
            _log.warning("signal %s: draining for %g s, then shutting down", sig, self.drain_s)
            timer = threading.Timer(self.drain_s, lambda: setattr(self, "should_exit", True))
            timer.daemon = True
            timer.start()
            return
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets=None) -> None:
        if self.service is not None:
            self.service.draining = self.service.closing = True  # stalled body reads end now (503)
        await super().shutdown(sockets)


def frozen_heap(loaded: T) -> T:
    """``loaded`` (the models, just loaded), after moving every object alive now out of the garbage
    collector's reach (``gc.freeze``): the models, torch and the modules are ~200,000 long-lived objects, and
    a full collection walked them all, ~35 ms with the event loop and the GIL held (more on a busy CPU).
    Under a retry storm the requests' garbage triggered one every second or so, and each held every
    request in flight for its length: the normal queries' p99 went past 100 ms on those alone
    (python -m bench.hostile). Frozen objects are never freed, which costs nothing for objects kept to
    the end anyway; objects created later are collected as before."""
    gc.collect()
    gc.freeze()
    return loaded


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


def uvicorn_config(app, config: ServeConfig) -> uvicorn.Config:
    h = config.http
    try:
        http = guarded_protocol(h.header_timeout_s, h.max_connections)
    except ImportError:  # no httptools: h11, whose head-size limit is the closest uvicorn offers
        _log.warning("httptools is not installed: no header deadline or connection cap (h11 protocol)")
        http = "h11"
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=http,
        log_level="warning",
        access_log=False,  # luodi.access logs every request as a JSON line, with its id and cause
        timeout_keep_alive=h.keep_alive_s,
        limit_concurrency=h.limit_concurrency,
        timeout_graceful_shutdown=h.graceful_shutdown_s,
        h11_max_incomplete_event_size=h.max_header_bytes,
        log_config=None,  # keep the logging set up by the caller
    )


def run(app, config: ServeConfig) -> None:  # pragma: no cover - blocks until a signal
    server = DrainingServer(
        uvicorn_config(app, config), getattr(app.state, "service", None), config.http.drain_s
    )
    server.run()
