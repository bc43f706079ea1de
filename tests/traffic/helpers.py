from __future__ import annotations

from pathlib import Path

from harness.model.clock import RunClock
from harness.model.requests import read_requests
from harness.traffic.engine import Engine, EngineConfig
from harness.traffic.workers import run_on_fast_loop


def run_engine(tmp_path: Path, url: str, *, resolver=None, **cfg):
    cfg.setdefault("rate", 50)
    cfg.setdefault("duration", 0.2)
    cfg.setdefault("read_timeout", 2.0)
    config = EngineConfig(url=url, **cfg)
    clock = RunClock.start()

    async def main():
        return await Engine(config, clock=clock, out_dir=tmp_path / "requests", resolver=resolver).run()

    result = run_on_fast_loop(main)
    return result, read_requests(tmp_path)
