"""uvicorn's server, telling ``ginpipe serve`` when it accepts requests and when a signal
starts the drain (uvicorn then stops accepting and waits for the requests in flight)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn


class Listener(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        on_ready: Callable[[], None],
        on_stop: Callable[[int], None],
    ) -> None:
        super().__init__(config)
        self.on_ready = on_ready
        self.on_stop = on_stop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self.on_ready()
            sys.stdout.flush()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            self.on_stop(sig)
        super().handle_exit(sig, frame)
