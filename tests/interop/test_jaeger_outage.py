"""A real Jaeger v2 goes down while tracekeep keeps traces for it; tracekeep is even killed with
SIGKILL during the outage. When Jaeger is back (same address, fresh in-memory storage), every span
kept during the outage arrives exactly once, and nothing Jaeger had acknowledged before the outage
is sent again. Spans are counted by span id in Jaeger's /api/v3 answers.

The client is the OpenTelemetry Python SDK (error traces: kept by the `errors` policy).
"""

import collections
import json
import os
import subprocess
import sys

import pytest

import peers

HERE = os.path.dirname(os.path.abspath(__file__))
POLICIES = """    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 0}}"""
# Quick retries, so that the test waits for the outage, not for backoff.
RETRY = "    retry_on_failure: {initial_interval: 50ms, max_interval: 500ms}\n"

if not os.access(peers.JAEGER_BIN, os.X_OK):
    pytest.skip(f"Jaeger v2 is not built at {peers.JAEGER_BIN}: scripts/setup.sh --peers builds "
                "it (see its log for why it could not)", allow_module_level=True)


def send_error_traces(tk, n):
    """Sends n error traces of 2 spans with the Python SDK; returns their trace ids (hex)."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "clients", "python_client.py"),
                        "--protocol", "grpc", "--endpoint", f"http://{tk.grpc}",
                        "--errors", str(n), "--healthy", "0", "--service", "shop-api"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ids = json.loads(r.stdout.strip().splitlines()[-1])["error"]
    assert len(ids) == n
    return ids


def span_ids(otlp_json):
    return [s["spanId"] for rs in otlp_json.get("resourceSpans", [])
            for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]


def test_outage_and_forwarder_kill_lose_nothing_and_duplicate_nothing(tmp_path):
    tk_dir = str(tmp_path / "tk")
    jaeger = peers.Jaeger(str(tmp_path / "jaeger1"))
    with jaeger:
        tk = peers.Tracekeep(tk_dir, POLICIES, forward_to=jaeger.otlp_grpc, exporter_extra=RETRY)
        with tk:
            before = send_error_traces(tk, 3)
            for trace_id in before:
                jaeger.wait_trace(trace_id, 2)
            peers.wait_for(lambda: tk.metric("tracekeep_exporter_spans_exported_total") == 6, 30,
                           "6 spans acknowledged by Jaeger")

            # Jaeger goes down hard; tracekeep keeps traces and queues them on disk.
            jaeger.proc.kill()
            jaeger.proc.wait()
            during = send_error_traces(tk, 4)
            peers.wait_for(lambda: tk.metric("tracekeep_exporter_queue_spans") == 8, 30,
                           "8 kept spans queued while Jaeger is down")
            peers.wait_for(lambda: tk.metric("tracekeep_exporter_send_failures_total") > 0, 30,
                           "a failed send to the stopped Jaeger")

            # tracekeep is killed during the outage, and restarted on the same data directory.
            tk.proc.kill()
            tk.proc.wait()

    restarted = peers.Tracekeep(tk_dir, POLICIES, forward_to=jaeger.otlp_grpc,
                                exporter_extra=RETRY)
    with restarted, peers.Jaeger(str(tmp_path / "jaeger2"), same_ports_as=jaeger) as back:
        for trace_id in during:
            got = back.wait_trace(trace_id, 2, timeout_s=60)
            ids = span_ids(got)
            dup = [i for i, c in collections.Counter(ids).items() if c > 1]
            assert len(ids) == 2 and not dup, f"trace {trace_id}: spans {ids}"
        peers.wait_for(lambda: restarted.metric("tracekeep_exporter_queue_spans") == 0, 30,
                       "the export queue drained")
        # Acknowledged before the outage: not sent again after the restart.
        for trace_id in before:
            assert back.trace(trace_id) is None, f"trace {trace_id} was sent twice"
        assert restarted.metric("tracekeep_exporter_spans_exported_total") == 8
