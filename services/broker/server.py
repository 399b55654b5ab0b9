"""Run the broker behind a TCP gate that can stop accepting connections (the disconnect fault).

uvicorn listens on a private loopback port; the public port is a small asyncio proxy.
While the ``broker_disconnect`` fault is active the proxy closes its listening socket and
aborts open connections, so clients get "connection refused", exactly as when a real
venue drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn
from fastapi import FastAPI

from services.common.config import ServiceSettings
from services.common.faults import FaultWatcher
from services.common.tasks import cancel_and_wait
from services.common.web import redis_client

_log = logging.getLogger("services.broker.gate")


class TcpGate:
    """A TCP forwarder from ``host:port`` to ``host:backend_port`` that can be shut."""

    def __init__(self, host: str, port: int, backend_port: int) -> None:
        self.host, self.port, self.backend_port = host, port, backend_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def is_open(self) -> bool:
        return self._server is not None

    async def open(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, reuse_address=True
            )

    async def shut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Track the client side at once, so shut() also closes connections that are still
        # waiting for the backend; every exit path closes both sides (no leaked sockets).
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(self.host, self.backend_port)
            except OSError:
                return
            if self._server is None:  # the gate was shut while we connected
                return
            self._writers.add(up_writer)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                try:
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                except OSError:
                    pass
                finally:
                    dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()


class BrokerServer:
    """uvicorn + :class:`TcpGate` + the fault watcher that opens and shuts the gate."""

    def __init__(self, app: FastAPI, settings: ServiceSettings, host: str, port: int) -> None:
        self.settings = settings
        # uvicorn's private port is bound here, at once: a port number chosen now and
        # bound later could be taken meanwhile by any outgoing connection. The protocol
        # is named: asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and
        # without it each response waited about 40 ms for the gate's delayed ACK.
        self._backend = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._backend.bind((host, 0))
        self.gate = TcpGate(host, port, int(self._backend.getsockname()[1]))
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.uvicorn = uvicorn.Server(config)

    async def _watch(self, watcher: FaultWatcher) -> None:
        while True:
            with contextlib.suppress(Exception):
                await watcher.refresh()
            down = watcher.get("broker_disconnect") is not None
            if down and self.gate.is_open:
                _log.warning("broker disconnect fault: refusing connections")
                await self.gate.shut()
            elif not down and not self.gate.is_open:
                _log.warning("broker reconnected: accepting connections")
                await self.gate.open()
            await asyncio.sleep(0.1)

    async def serve(self) -> None:
        """Run until :meth:`request_stop` (or a signal, handled by uvicorn)."""
        client = redis_client(self.settings.redis_url)
        watcher = FaultWatcher(client)
        serve_task = asyncio.create_task(self.uvicorn.serve(sockets=[self._backend]))
        while not self.uvicorn.started and not serve_task.done():
            await asyncio.sleep(0.02)
        await self.gate.open()
        watch_task = asyncio.create_task(self._watch(watcher))
        try:
            await serve_task
        finally:
            await cancel_and_wait(watch_task)
            await self.gate.shut()
            await client.aclose()

    def request_stop(self) -> None:
        self.uvicorn.should_exit = True
