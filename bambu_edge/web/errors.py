"""The API's refusals: an ``ApiError`` becomes ``{"error": code, "message": message}`` with its HTTP
status (the error middleware in server.py answers it)."""

from __future__ import annotations


class ApiError(Exception):
    """Turned into ``{"error": code, "message": message}`` with ``status`` by the error middleware."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)
