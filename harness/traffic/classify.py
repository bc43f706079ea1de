"""One pure function that maps what happened to a request to an Outcome.

Failures in the traffic path are data, never exceptions: every OS error,
timeout and protocol surprise the engine sees ends up here, and comes out as
(outcome, errno, normalised error text). Tested by a table of real socket
failures reproduced against tiny local servers (tests/traffic/test_classify.py).
"""

from __future__ import annotations

import errno as _errno
import re
import socket
import ssl
from typing import Literal

from harness.model.outcome import Outcome

Stage = Literal["connect", "send", "read"]

_RESET_ERRNOS = {_errno.ECONNRESET, _errno.EPIPE, _errno.ECONNABORTED}
_REFUSED_ERRNOS = {_errno.ECONNREFUSED}
_UNREACHABLE_ERRNOS = {_errno.EHOSTUNREACH, _errno.ENETUNREACH, _errno.EADDRNOTAVAIL}
_ADDR = re.compile(r"\(?'?\d{1,3}(?:\.\d{1,3}){3}'?,?\s*\d*\)?|\[[0-9a-f:]+\](?::\d+)?|:\d{2,5}\b", re.I)


def normalise_error(text: str) -> str:
    """Strip addresses and ports so equal failures group together."""
    text = _ADDR.sub("<addr>", text)
    return re.sub(r"\s+", " ", text).strip()[:200]


def classify_error(exc: BaseException | None, stage: Stage, *, got_bytes: bool = False) -> tuple[Outcome, int, str]:
    """Classify a request that ended without a complete response.

    ``exc`` is what the transport reported (None for a clean EOF);
    ``stage`` is how far the request got: the connect, the write of the
    request, or waiting for/reading the response.
    """
    if exc is None:
        # The peer closed (FIN) before a complete response.
        what = "server closed the connection before a complete response" if got_bytes else \
               "server closed the connection without a response"
        return (Outcome.CLOSED, 0, what) if stage != "connect" else (Outcome.CLOSED, 0, "closed during connect")
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError on 3.11
        if stage == "connect":
            return Outcome.CONNECT_TIMEOUT, _errno.ETIMEDOUT, "connect timed out"
        return Outcome.READ_TIMEOUT, _errno.ETIMEDOUT, "no response before the read timeout"
    if isinstance(exc, OSError):
        code = exc.errno or 0
        text = normalise_error(exc.strerror or str(exc) or type(exc).__name__)
        if isinstance(exc, ConnectionRefusedError) or code in _REFUSED_ERRNOS:
            return Outcome.REFUSED, _errno.ECONNREFUSED, "connection refused"
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)) or code in _RESET_ERRNOS:
            # whether any response byte had arrived decides if a client may replay it
            return (Outcome.RESET, code or _errno.ECONNRESET,
                    "connection reset by peer after a partial response" if got_bytes and stage == "read"
                    else "connection reset by peer")
        if code == _errno.ETIMEDOUT:
            return (Outcome.CONNECT_TIMEOUT if stage == "connect" else Outcome.READ_TIMEOUT), code, text
        if code in _UNREACHABLE_ERRNOS or isinstance(exc, socket.gaierror):
            return Outcome.OTHER, code, text
        return Outcome.OTHER, code, text
    if isinstance(exc, ssl.SSLError):
        return Outcome.OTHER, 0, normalise_error(str(exc))
    return Outcome.OTHER, 0, normalise_error(f"{type(exc).__name__}: {exc}")
