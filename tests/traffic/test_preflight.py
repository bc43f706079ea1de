import asyncio

import pytest

from harness.errors import PlatformError
from harness.traffic.preflight import wait_until_serving
from tests.traffic import servers


def test_returns_once_the_target_serves(server_factory):
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    attempts = asyncio.run(wait_until_serving(srv.url, resolver=None, need=3, deadline_s=10))
    assert attempts == 3


def test_waits_through_warm_up_503s(server_factory):
    answers = iter([503, 503, 503])

    def warming(conn):
        servers.read_request(conn)
        code = next(answers, 200)
        conn.sendall(servers.status_response(code))

    srv = server_factory(warming)
    attempts = asyncio.run(wait_until_serving(srv.url, resolver=None, need=2, deadline_s=20, interval=0.01))
    assert attempts == 5


def test_never_serving_is_a_platform_error_naming_the_answer(server_factory):
    srv = server_factory(servers.answer(servers.status_response(503)))
    with pytest.raises(PlatformError, match="HTTP 503"):
        asyncio.run(wait_until_serving(srv.url, resolver=None, need=2, deadline_s=0.5, interval=0.05))
