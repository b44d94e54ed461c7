"""HTTP/2 flow control for outgoing bodies, shared by the APNs client and the fake APNs server (both on `h2`)."""

from __future__ import annotations

import contextlib

import h2.connection
import h2.exceptions


class OutboundBodies:
    """Sends bodies as far as the stream and connection windows allow; the rest waits for `resume` (called on
    WINDOW_UPDATE or a SETTINGS change)."""

    def __init__(self, connection: h2.connection.H2Connection) -> None:
        self._h2 = connection
        self._waiting: dict[int, bytes] = {}

    def send(self, stream_id: int, body: bytes) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):  # reset by the peer meanwhile
            while body:
                window = self._h2.local_flow_control_window(stream_id)
                size = min(len(body), window, self._h2.max_outbound_frame_size)
                if size <= 0:
                    self._waiting[stream_id] = body
                    return
                self._h2.send_data(stream_id, body[:size], end_stream=size == len(body))
                body = body[size:]

    def resume(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for stream_id, body in waiting.items():
            self.send(stream_id, body)

    def forget(self, stream_id: int) -> None:
        self._waiting.pop(stream_id, None)

    def clear(self) -> None:
        self._waiting.clear()
