"""aiomqtt's client with one race closed (aiomqtt 2.5.1).

paho asks for a write watch from whatever thread it runs on, so aiomqtt schedules
``loop.add_writer(fd, ...)`` with ``call_soon_threadsafe``. When the connection drops between the
request and the call (a broker stopped while a message is being published), the socket is already
closed and ``add_writer`` raises in the event loop's callback, logged as an error with a traceback.
Here the watch is added only if the socket is still open; the disconnect itself is reported by
aiomqtt as usual (``MqttError``)."""

from __future__ import annotations

from typing import Any

import aiomqtt


class Client(aiomqtt.Client):
    def _on_socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        fileno = sock.fileno()

        def callback() -> None:
            try:
                client.loop_write()
            except Exception as exc:  # a broken connection: aiomqtt's disconnect handling takes it
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def watch() -> None:
            if fileno < 0 or sock.fileno() != fileno:
                return  # closed (or replaced) meanwhile
            try:
                self._loop.add_writer(fileno, callback)
            except (OSError, ValueError):
                pass  # closed meanwhile: the read side reports the disconnect

        self._loop.call_soon_threadsafe(watch)
