"""The queue's plain refusals, shared by its parts (dispatcher, file library, print-now)."""

from __future__ import annotations


class QueueError(Exception):
    """A queue request that cannot be done; ``status``/``code`` for the API, ``message`` plain words."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
