"""The security preset (deploy/security/policies.yaml), loaded into the real tracekeep with
`tracekeepctl policies set`, keeps every attack trace of a scripted client (Python SDK) and none of
its clean ones, and counts them per policy. Its conditions also start the OpenTelemetry
Collector's tail_sampling (the real Jaeger v2 binary)."""

import json
import os
import subprocess
import sys

import peers

HERE = os.path.dirname(os.path.abspath(__file__))
PRESET = os.path.join(HERE, "..", "..", "deploy", "security", "policies.yaml")
# What each attack trace is kept for: the first policy of the preset that matches it.
EXPECTED_POLICY = {
    "path-traversal": "path-traversal",
    "path-traversal-encoded": "path-traversal",
    "sql-injection-statement": "sql-injection",
    "sql-injection-union": "sql-injection",
    "sql-injection-query": "sql-injection",
    "unauthorized": "auth-failures",
    "forbidden-old-semconv": "auth-failures",
    "throttled": "auth-failures",
    "oversized": "oversized-requests",
    "unknown-service": "unknown-services",
    "hidden-exception": "exceptions",
}
INITIAL = "    - {name: nothing, type: probabilistic, probabilistic: {sampling_percentage: 0}}"


def kept_by(trace):
    """The tracekeep.policy attribute of a stored trace's spans."""
    for rs in trace.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for kv in span.get("attributes", []):
                    if kv["key"] == "tracekeep.policy":
                        return kv["value"]["stringValue"]
    return None


def test_preset_keeps_attacks_and_no_clean_traces(tmp_path):
    with open(PRESET) as f:
        preset = f.read()
    # The preset's baseline keeps 10 % of everything; at 0 % only its other policies decide.
    assert "sampling_percentage: 10}" in preset
    policies = tmp_path / "policies.yaml"
    policies.write_text(preset.replace("sampling_percentage: 10}", "sampling_percentage: 0}"))

    with peers.Tracekeep(str(tmp_path / "tk"), INITIAL, decision_wait="300ms") as tk:
        r = subprocess.run([peers.TRACEKEEPCTL_BIN, "--addr", tk.admin, "policies", "set",
                            str(policies)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([sys.executable, os.path.join(HERE, "clients", "security_client.py"),
                            "--endpoint", f"http://{tk.grpc}"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        sent = json.loads(r.stdout)
        assert set(sent["attack"]) == set(EXPECTED_POLICY)
        total = len(sent["attack"]) + len(sent["clean"])

        def decided():
            t = tk.metrics()
            n = (metric_total(t, "tracekeep_sampler_traces_sampled_total") +
                 metric_total(t, "tracekeep_sampler_traces_not_sampled_total"))
            return t if n >= total else None
        text = peers.wait_for(decided, 60, "every trace decided")

        for what, trace_id in sent["attack"].items():
            trace = tk.wait_trace(trace_id, 2)
            assert kept_by(trace) == EXPECTED_POLICY[what], (what, kept_by(trace))
        for what, trace_id in sent["clean"].items():
            assert tk.trace_get(trace_id) is None, f"clean trace {what} was kept"
        for policy in set(EXPECTED_POLICY.values()):
            n = sum(1 for p in EXPECTED_POLICY.values() if p == policy)
            assert tk.metric("tracekeep_sampler_traces_sampled_total",
                             f'policy="{policy}"') == n, policy
        assert metric_total(text, "tracekeep_sampler_traces_not_sampled_total") == \
            len(sent["clean"])


def metric_total(text, name):
    """The sum of every series of a metric in an exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.split()[-1])
    return total


def test_preset_conditions_start_the_collectors_tail_sampling(tmp_path):
    jaeger = peers.require(peers.JAEGER_BIN, "jaeger (scripts/setup.sh --peers)")
    with open(PRESET) as f:
        preset = f.read()
    policies = "\n".join("      " + line if line.strip() else line for line in preset.splitlines())
    config = f"""service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [nop]
  telemetry:
    metrics: {{level: none}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{peers.free_port()}"}}
processors:
  tail_sampling:
    policies:
{policies}
exporters:
  nop:
"""
    path = tmp_path / "jaeger.yaml"
    path.write_text(config)
    proc = peers.Process([jaeger, "--config", str(path)], str(tmp_path / "jaeger.log"),
                         cwd=str(tmp_path), env=dict(os.environ, OTEL_TRACES_EXPORTER="none"))
    try:
        def outcome():
            log = proc.log()
            if "Everything is ready" in log:
                return "started"
            return None if proc.alive() else "exited"
        assert peers.wait_for(outcome, 60, "Jaeger to start or refuse") == "started", \
            proc.log()[-4000:]
    finally:
        proc.stop()
