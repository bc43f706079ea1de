"""The host speed probe (harness/traffic/hostspeed.py): the windows in which
the host ran this machine slowly, which a run that fell behind names as the
cause, and which `make bench` keeps apart from the engine's own figures."""

from __future__ import annotations

import array
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.traffic import hostspeed
from harness.traffic.hostspeed import HostSpeedProbe, host_fact, host_sentence, windows_of

MS = 1_000_000


def samples(durations: list[int], period_ns: int = 2 * MS) -> array.array:
    """The probe's flat (time, duration) pairs, one sample every ``period_ns``."""
    out = array.array("q")
    for i, d in enumerate(durations):
        out.extend((i * period_ns, d))
    return out


def test_a_steady_host_has_no_window():
    wins, span, share = windows_of(samples([1000, 1010, 990, 1200, 1000] * 20))
    assert wins == [] and share == 0.0
    assert span == pytest.approx(99 * 2 / 1000)


def test_a_run_of_slow_samples_is_one_window_with_its_speed():
    durs = [1000] * 40 + [4000, 5000, 4000, 5000] + [1000] * 40  # samples 40..43 at 20-25% speed
    wins, span, share = windows_of(samples(durs))
    assert len(wins) == 1
    start, end, speed = wins[0]
    assert start == 40 * 2 * MS  # the first slow sample
    assert end == 44 * 2 * MS  # the first sample at speed again
    assert speed == pytest.approx((0.25 + 0.2 + 0.25 + 0.2) / 4)
    assert share == pytest.approx(8 / (83 * 2))


def test_one_slow_sample_is_not_a_window():
    """An interrupt or an SMI can slow one sample; a window needs MIN_SAMPLES."""
    durs = [1000] * 30 + [9000] + [1000] * 30
    assert windows_of(samples(durs))[0] == []
    assert hostspeed.MIN_SAMPLES >= 2


def test_a_window_at_the_end_of_the_run_is_kept():
    wins, _, _ = windows_of(samples([1000] * 30 + [5000] * 5))
    assert [(a, b) for a, b, _ in wins] == [(30 * 2 * MS, 34 * 2 * MS)]


def test_too_few_samples_say_nothing():
    assert windows_of(samples([1000] * 5)) == ([], 0.0, 0.0)


def test_the_probe_process_samples_and_stops():
    with HostSpeedProbe(seconds=20, wait_ready=True) as probe:
        proc = probe._proc
        time.sleep(1.5)  # over hostspeed.CHUNK samples: appended to its file in more than one piece
    assert proc.poll() is not None  # stopped when the block ended, long before its 20 s
    assert hostspeed.CHUNK * hostspeed.PERIOD < 1.2 < probe.span_s < 10.0
    assert 0.0 <= probe.slow_share <= 1.0
    assert probe.describe().startswith(("host steady", "host slow"))
    assert not probe._dir.exists()  # its samples file is gone
    assert probe.section()["probed_s"] == round(probe.span_s, 3)


def test_the_section_gives_windows_on_the_run_clock_and_the_sentence_names_the_host():
    probe = HostSpeedProbe(seconds=1)
    probe.windows, probe.span_s, probe.slow_share = [(1_040 * MS, 1_080 * MS, 0.21), (1_500 * MS, 1_510 * MS, 0.3)], 10.0, 0.005
    section = probe.section(anchor_ns=1_000 * MS)
    assert section == {"probed_s": 10.0, "slow_share": 0.005,
                       "windows": [{"start_ns": 40 * MS, "end_ns": 80 * MS, "speed": 0.21},
                                   {"start_ns": 500 * MS, "end_ns": 510 * MS, "speed": 0.3}]}
    sentence = host_sentence(section)
    assert "about 26% of its speed for 0.5% of the traffic" in sentence
    assert "2 window(s), the longest 40 ms" in sentence
    assert sentence.startswith(host_fact(section)) and "falls behind" not in host_fact(section)


def test_a_steady_or_unprobed_host_gives_no_sentence():
    assert host_sentence({"probed_s": 10.0, "slow_share": 0.0, "windows": []}) is None
    assert host_sentence(None) is None and host_fact(None) is None


def test_the_probe_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(hostspeed.ENV_OFF, "0")
    with HostSpeedProbe(seconds=5) as probe:
        assert probe._proc is None
    assert probe.section()["windows"] == [] and "not probed" in probe.describe()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_the_probe_stops_and_cleans_up_when_the_harness_dies():
    """A harness killed mid-run (SIGKILL, a crash) leaves no probe running and no samples dir."""
    code = ("import os; from harness.traffic.hostspeed import HostSpeedProbe; "
            "p = HostSpeedProbe(120, wait_ready=True).start(); print(p._proc.pid, p._dir, flush=True); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    pid, workdir = out.stdout.split()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (_alive(int(pid)) or Path(workdir).exists()):
        time.sleep(0.05)
    assert not _alive(int(pid))
    assert not Path(workdir).exists()


def test_no_writable_temp_dir_means_no_probe_not_a_failed_run(monkeypatch, tmp_path):
    monkeypatch.setattr(hostspeed.tempfile, "tempdir", str(tmp_path / "missing"))
    with HostSpeedProbe(seconds=5) as probe:
        assert probe._proc is None
    assert probe.section() == {"probed_s": 0.0, "slow_share": 0.0, "windows": []}
    assert probe.describe() == "host speed: no samples"
