"""A request the server refuses: an HTTP status and one line saying why.

The app answers it as ``{"error": "..."}`` (one line of JSON) and goes on serving;
``kind`` labels it in ``/metrics``.
"""

from __future__ import annotations


class RequestError(Exception):
    """A 4xx answer: ``status``, one-line ``message``, ``kind`` for the error counter."""

    def __init__(self, status: int, message: str, kind: str = "bad_input") -> None:
        super().__init__(" ".join(message.split()))
        self.status = status
        self.kind = kind
