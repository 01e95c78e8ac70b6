"""OpenTelemetry -> Kafka -> tracekeep, with real parts only.

The OpenTelemetry Python SDK sends the canonical interop traces to real Jaeger v2 acting as an
OpenTelemetry Collector, whose `kafka` exporter writes them into topic `otlp_spans` of a real Apache
Kafka broker (otlp_proto, partition_traces_by_id). tracekeep's Kafka receiver consumes the topic:
error traces are kept with every field the SDK set, healthy ones are dropped, and the group's
offsets are committed past everything consumed.
"""

import json
import os
import subprocess
import sys

import pytest

import otlp
import peers

HERE = os.path.dirname(os.path.abspath(__file__))
POLICIES = """    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}"""

if not os.access(peers.JAEGER_BIN, os.X_OK):
    pytest.skip(f"Jaeger v2 is not built at {peers.JAEGER_BIN}: scripts/setup.sh --peers builds "
                "it with Go >= 1.26 (see its log for why it could not)", allow_module_level=True)


def test_traces_produced_by_the_otel_kafka_exporter_are_sampled(tmp_path):
    with peers.KafkaBroker(str(tmp_path / "kafka")) as broker, \
            peers.JaegerToKafka(str(tmp_path / "jaeger"), broker.bootstrap) as jaeger, \
            peers.Tracekeep(str(tmp_path / "tk"), POLICIES, decision_wait="500ms",
                            kafka=f'{{enabled: true, brokers: ["{broker.bootstrap}"], '
                                  'initial_offset: earliest, session_timeout: 6s}') as tk:
        r = subprocess.run([sys.executable, os.path.join(HERE, "clients", "python_client.py"),
                            "--protocol", "grpc", "--endpoint", f"http://{jaeger.otlp_grpc}",
                            "--errors", "3", "--healthy", "3", "--service", "shop-api"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        ids = json.loads(r.stdout.strip().splitlines()[-1])

        for trace_id in ids["error"]:
            otlp.check_canonical(tk.wait_trace(trace_id, 2, timeout_s=60), "shop-api", error=True,
                                 policy="errors")
        topic = 'topic="otlp_spans"'
        # Records hold one trace each (partition_traces_by_id): at least 6, 12 spans, none skipped.
        peers.wait_for(lambda: tk.metric("tracekeep_kafka_spans_accepted_total", topic) == 12, 60,
                       "12 spans taken from Kafka")
        records = tk.metric("tracekeep_kafka_records_consumed_total", topic)
        assert records >= 6
        assert tk.metric("tracekeep_kafka_records_skipped_total",
                         'reason="malformed",' + topic) == 0
        peers.wait_for(lambda: tk.metric("tracekeep_sampler_traces_not_sampled_total") == 3, 30,
                       "3 healthy traces dropped")
        for trace_id in ids["healthy"]:
            assert tk.trace_get(trace_id) is None, f"healthy trace {trace_id} was kept"

        # Every record is durable in the journal, so every partition commits its end.
        def committed():
            text = tk.metrics()
            total = 0
            for line in text.splitlines():
                if line.startswith("tracekeep_kafka_committed_offset{"):
                    total += max(0, int(float(line.split()[-1])))
            return total == records
        peers.wait_for(committed, 30, f"offsets committed past the {records:.0f} records")
