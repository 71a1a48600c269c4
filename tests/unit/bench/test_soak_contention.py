"""bench.soak_faults' contention and side-by-side options: the busy loops it starts run at the asked
niceness and are ended by the run's own clean-up; --set reaches the server config."""

from __future__ import annotations

import os
import time

import pytest

from bench.soak_faults import apply_setting, start_burners, stop


def test_busy_loops_run_at_the_asked_niceness_and_stop_with_the_run():
    procs = start_burners(2, 19)
    try:
        time.sleep(0.3)
        assert all(p.poll() is None for p in procs)
        assert {os.getpriority(os.PRIO_PROCESS, p.pid) for p in procs} == {19}
    finally:
        stop(procs)
    assert all(p.poll() is not None for p in procs)


def test_set_overrides_a_server_config_key():
    config = {"http": {"graceful_shutdown_s": 10.0}}
    apply_setting(config, "http.max_loop_lag_ms=100")
    apply_setting(config, "batching.max_queue_ms=500")
    assert config == {
        "http": {"graceful_shutdown_s": 10.0, "max_loop_lag_ms": 100},
        "batching": {"max_queue_ms": 500},
    }
    with pytest.raises(SystemExit):
        apply_setting(config, "max_queue_ms=500")  # no section
