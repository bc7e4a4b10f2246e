"""`make bench` end to end, briefly, on SQLite: gunicorn, the load generator, the fake Twilio.

The figures themselves are not asserted (they depend on the machine); what
is checked is that every measured request got the answer its scenario
expects, and that the results have the documented shape.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ["bare", "write_floor", "check", "send_floor", "send"]


@pytest.fixture(scope="module")
def bench_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        BENCH_SECONDS="1",
        BENCH_WARMUP="0.5",
        BENCH_ROUNDS="2",
        BENCH_SCENARIOS=",".join(SCENARIOS),
        BENCH_WORKERS="1",
        BENCH_THREADS="4",
        BENCH_CLIENTS="4",
        BENCH_LOADGEN_PROCESSES="1",
        BENCH_POOL_RATE="400",
        BENCH_RESULTS_DIR=str(out),
    )
    result = subprocess.run(
        [sys.executable, "-m", "bench.run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((out / "latest.json").read_text()), (out / "latest.md").read_text()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_measured_request_gets_the_expected_answer(bench_results, scenario):
    report, _ = bench_results
    # A check that does not answer verified: true, or a send that is not
    # pending, counts as an error: the bench measures only real successes.
    assert report[scenario]["requests"] > 0
    assert report[scenario]["errors"] == 0, report[scenario]["error_samples"]


def test_results_give_rps_and_percentiles_for_each_scenario(bench_results):
    report, _ = bench_results
    for scenario in SCENARIOS:
        result = report[scenario]
        assert result["rps"] > 0
        assert 0 < result["p50_ms"] <= result["p99_ms"]


def test_results_record_the_settings_they_ran_under(bench_results):
    report, _ = bench_results
    settings = report["settings"]
    assert settings["cores"] == os.cpu_count()
    assert (settings["workers"], settings["threads"], settings["clients"]) == (1, 4, 4)
    assert settings["rounds"] == 2
    assert settings["database"].startswith("SQLite")


def test_each_scenario_pools_its_rounds(bench_results):
    report, _ = bench_results
    for scenario in SCENARIOS:
        by_round = report[scenario]["rounds_rps"]
        assert len(by_round) == 2
        assert min(by_round) <= report[scenario]["rps"] <= max(by_round)
    assert len(report["goals"]["check_vs_write_floor_rps_by_round"]) == 2


def test_the_table_compares_check_with_write_floor_and_send_with_its_goal(bench_results):
    _, table = bench_results
    assert "| check |" in table
    assert "check / write_floor throughput" in table
    assert "send / send_floor throughput" in table
    assert "send:" in table
    assert "goal 0.75 x 4 / 0.15 s = 20 req/s" in table
