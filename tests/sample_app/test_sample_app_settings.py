"""Pure parts of the sample app: the environment contract and the latency model."""

from __future__ import annotations

import math
import random
import statistics

import pytest


def test_defaults(app_module):
    s = app_module.Settings.from_env({"POD_NAME": "p"})
    assert (s.port, s.host, s.pod, s.version) == (8080, "0.0.0.0", "p", "1")
    assert s.graceful_shutdown and s.drain_on_sigterm
    assert (s.drain_seconds, s.shutdown_timeout, s.keepalive_close) == (0.0, 30.0, "polite")
    assert (s.startup_delay, s.warmup_seconds) == (0.0, 0.0)
    assert (s.work_latency_ms, s.work_latency_sigma, s.slow_request_ratio, s.slow_request_ms) == (5.0, 0.0, 0.0, 3000.0)
    assert (s.max_concurrency, s.queue_timeout_ms) == (0, 0.0)


def test_pod_name_defaults_to_hostname(app_module):
    import socket

    assert app_module.Settings.from_env({}).pod == socket.gethostname()


@pytest.mark.parametrize("env, names", [
    ({"PORT": "http"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"GRACEFUL_SHUTDOWN": "maybe"}, "GRACEFUL_SHUTDOWN"),
    ({"DRAIN_SECONDS": "-1"}, "DRAIN_SECONDS"),
    ({"WORK_LATENCY_MS": "nan"}, "WORK_LATENCY_MS"),
    ({"SLOW_REQUEST_RATIO": "1.5"}, "SLOW_REQUEST_RATIO"),
    ({"KEEPALIVE_CLOSE": "rst"}, "KEEPALIVE_CLOSE"),
], ids=["port-text", "port-range", "bool", "negative", "nan", "ratio", "choice"])
def test_bad_values_name_the_variable(app_module, env, names):
    with pytest.raises(app_module.ConfigError, match=names):
        app_module.Settings.from_env(env)


def test_booleans_accept_common_spellings(app_module):
    assert app_module.Settings.from_env({"GRACEFUL_SHUTDOWN": "FALSE"}).graceful_shutdown is False
    assert app_module.Settings.from_env({"DRAIN_ON_SIGTERM": "0"}).drain_on_sigterm is False


def _settings(app_module, **env):
    return app_module.Settings.from_env({k: str(v) for k, v in env.items()})


@pytest.mark.parametrize("env, query, expected", [
    ({}, None, 5.0),
    ({"WORK_LATENCY_MS": 0}, None, 0.0),
    ({"WORK_LATENCY_MS": 20}, 3.0, 3.0),
    ({"SLOW_REQUEST_RATIO": 1, "SLOW_REQUEST_MS": 9000}, None, 9000.0),
    ({"SLOW_REQUEST_RATIO": 1, "SLOW_REQUEST_MS": 9000}, 1.0, 1.0),
], ids=["default-fixed", "zero", "query-wins", "all-slow", "query-beats-slow"])
def test_pick_latency(app_module, env, query, expected):
    s = _settings(app_module, **env)
    assert app_module.pick_latency_ms(s, random.Random(1), query) == expected


def test_lognormal_latency_has_the_configured_median_and_spread(app_module):
    s = _settings(app_module, WORK_LATENCY_MS=20, WORK_LATENCY_SIGMA=0.5)
    rnd = random.Random(42)
    samples = [app_module.pick_latency_ms(s, rnd, None) for _ in range(20000)]
    assert statistics.median(samples) == pytest.approx(20, rel=0.05)
    logs = [math.log(x) for x in samples]
    assert statistics.pstdev(logs) == pytest.approx(0.5, rel=0.05)


def test_slow_ratio_is_the_share_of_slow_requests(app_module):
    s = _settings(app_module, SLOW_REQUEST_RATIO=0.1, SLOW_REQUEST_MS=4000)
    rnd = random.Random(7)
    slow = sum(app_module.pick_latency_ms(s, rnd, None) == 4000 for _ in range(20000))
    assert slow / 20000 == pytest.approx(0.1, abs=0.01)
