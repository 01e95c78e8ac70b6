"""Real Prometheus -> tracekeep: it scrapes /metrics, and the series read back through its HTTP
API match what tracekeep did. promtool validates the exposition format."""

import json
import os
import subprocess
import sys

import pytest

import peers

HERE = os.path.dirname(os.path.abspath(__file__))
POLICIES = """    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 0}}"""


@pytest.fixture(scope="module")
def tracekeep(tmp_path_factory):
    with peers.Tracekeep(str(tmp_path_factory.mktemp("tk")), POLICIES, decision_wait="200ms") as tk:
        yield tk


def test_promtool_check_metrics_reports_nothing(tracekeep):
    promtool = peers.require(peers.PROMTOOL_BIN, "promtool (Debian package prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=tracekeep.metrics(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", \
        f"promtool check metrics (exit {r.returncode}):\n{r.stdout}{r.stderr}"


def test_prometheus_scrapes_tracekeep(tracekeep, tmp_path):
    # 3 error traces (kept) and 2 healthy ones (dropped at a 0 % baseline), 2 spans each.
    r = subprocess.run([sys.executable, os.path.join(HERE, "clients", "python_client.py"),
                        "--protocol", "grpc", "--endpoint", f"http://{tracekeep.grpc}",
                        "--errors", "3", "--healthy", "2"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    peers.wait_for(lambda: tracekeep.metric("tracekeep_sampler_traces_not_sampled_total") == 2,
                   30, "the sampler to decide every trace")

    with peers.Prometheus(str(tmp_path / "prom"), [tracekeep.telemetry]) as prom:
        def value(expr):
            result = prom.query(expr)
            return float(result[0]["value"][1]) if len(result) == 1 else None

        peers.wait_for(lambda: value('up{job="tracekeep"}') == 1, 60, "a successful scrape")
        peers.wait_for(lambda: value('tracekeep_receiver_spans_accepted_total{transport="grpc"}')
                       == 10, 60, "10 accepted spans in Prometheus")
        assert value('tracekeep_sampler_traces_sampled_total{policy="errors"}') == 3
        assert value("tracekeep_sampler_traces_not_sampled_total") == 2
        assert value("tracekeep_storage_spans_stored_total") == 6
        build = prom.query("tracekeep_build_info")
        assert len(build) == 1 and build[0]["metric"]["version"], build
        # Every metric tracekeep exposes arrived in Prometheus under the same name.
        exposed = {line.split("{")[0].split(" ")[0] for line in tracekeep.metrics().splitlines()
                   if line and not line.startswith("#")}
        names = set(peers.http_get_json(
            f"http://{prom.addr}/api/v1/label/__name__/values")["data"])
        assert exposed and exposed <= names, f"missing in Prometheus: {exposed - names}"

        # Every query of the Grafana dashboard is valid PromQL for this Prometheus, and those
        # over tracekeep's current metrics return data.
        with open(os.path.join(HERE, "..", "..", "deploy", "grafana-dashboard.json")) as f:
            dashboard = json.load(f)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        assert len(exprs) >= 19, exprs
        for expr in exprs:
            q = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
            prom.query(q)  # raises on a PromQL error
            # The traffic has no order, no forwarding and no exception event.
            if "order" not in q and "exporter" not in q and "exceptions" not in q:
                peers.wait_for(lambda: prom.query(q), 30, f"data for dashboard query {q}")


def test_alert_rules_are_valid_and_pass_their_unit_tests():
    promtool = peers.require(peers.PROMTOOL_BIN, "promtool (Debian package prometheus)")
    deploy = os.path.join(HERE, "..", "..", "deploy")
    for argv in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"],
                 ["check", "rules", "security/alerts.yml"],
                 ["test", "rules", "security/alerts_test.yml"],
                 ["check", "config", "prometheus.yml"], ["check", "config", "prometheus-local.yml"]):
        r = subprocess.run([promtool] + argv, cwd=deploy, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, f"promtool {' '.join(argv)}:\n{r.stdout}{r.stderr}"
