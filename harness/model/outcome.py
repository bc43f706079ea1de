"""The one outcome enum every stage uses for a request's fate."""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    OK = "ok"
    HTTP_502 = "http_502"
    HTTP_503 = "http_503"
    HTTP_504 = "http_504"
    HTTP_5XX = "http_5xx"  # any other 5xx
    HTTP_4XX = "http_4xx"
    REFUSED = "refused"  # connect got ECONNREFUSED (or no endpoint to route to)
    RESET = "reset"  # ECONNRESET / EPIPE: the peer sent RST
    CLOSED = "closed"  # server closed the connection without (a complete) response
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"
    DROPPED = "dropped"  # the engine could not send it on schedule
    OTHER = "other"


#: Stable order; the request files store the outcome as an index into it.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
OUTCOME_CODE: dict[Outcome, int] = {o: i for i, o in enumerate(OUTCOMES)}
FAILED: frozenset[Outcome] = frozenset(o for o in Outcome if o is not Outcome.OK)
#: Outcomes where the service under test is to blame (dropped is the engine's).
SERVICE_FAILURES: frozenset[Outcome] = FAILED - {Outcome.DROPPED}


def outcome_for_status(status: int) -> Outcome:
    if status < 400:
        return Outcome.OK
    if status < 500:
        return Outcome.HTTP_4XX
    return {502: Outcome.HTTP_502, 503: Outcome.HTTP_503, 504: Outcome.HTTP_504}.get(
        status, Outcome.HTTP_5XX
    )
