"""Every test keeps the run history (reports/history.sqlite, docs/proof.md)
in its own temporary file, never in the checkout's reports/."""

import pytest


@pytest.fixture(autouse=True)
def _private_history(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ROLLOUT_HARNESS_HISTORY", str(tmp_path_factory.mktemp("history") / "history.sqlite"))
