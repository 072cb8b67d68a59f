"""The load test, short (benchmarks/service_load.py; the full run is in docs/service.md): a
few clients below the queue's capacity get no error at all, many clients above it get only
503s besides their answers, and the service's memory stays bounded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from service_support import needs_tts

pytestmark = [needs_tts, pytest.mark.timeout(300)]


def test_short_load_run(tmp_path):
    path = Path(__file__).parents[1] / "benchmarks" / "service_load.py"
    spec = importlib.util.spec_from_file_location("service_load", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plot = tmp_path / "load.png"
    report = module.main(["--clients", "2,10", "--seconds", "5", "--queue", "1", "--clips", "2",
                          "--plot", str(plot)])  # fmt: skip
    below, above = report["phases"]
    assert set(below["statuses"]) == {"200"} and below["statuses"]["200"] >= 2
    assert set(above["statuses"]) == {"200", "503"}
    assert above["busy_latency_ms"]["p50"] < above["latency_ms"]["p50"]  # refused at once
    memory = report["memory_mib"]
    assert memory["max"] < 2048 and plot.stat().st_size > 10_000
