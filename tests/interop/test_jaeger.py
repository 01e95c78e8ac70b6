"""tracekeep -> real Jaeger v2: kept traces arrive with every field the client sent; dropped
traces never arrive.

The client is the OpenTelemetry Python SDK; it also writes the exact OTLP request it encoded
(--dump), and each trace read back through Jaeger's /api/v3/traces/{id} is compared with it
field by field (ids, parent, name, kind, times, attributes of every type, events, links, status,
resource, scope). A second sender builds an OTLP request by hand with the OTLP protobuf types to
cover the attribute types the SDKs cannot produce (kvlist, bytes, nested arrays).
"""

import json
import os
import subprocess
import sys

import grpc
import pytest

import otlp
import peers

HERE = os.path.dirname(os.path.abspath(__file__))
POLICIES = """    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 0}}"""

if not os.access(peers.JAEGER_BIN, os.X_OK):
    pytest.skip(f"Jaeger v2 is not built at {peers.JAEGER_BIN}: scripts/setup.sh --peers builds "
                "it with Go >= 1.26 (see its log for why it could not)", allow_module_level=True)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    with peers.Jaeger(str(tmp_path_factory.mktemp("jaeger"))) as jaeger:
        with peers.Tracekeep(str(tmp_path_factory.mktemp("tk")), POLICIES,
                             forward_to=jaeger.otlp_grpc, decision_wait="300ms") as tk:
            yield tk, jaeger


def only_trace(sent, trace_id):
    """The part of a dumped OTLP request that belongs to one trace, in normal form."""
    return {sid: s for sid, s in otlp.normalize(sent).items() if s["trace_id"] == trace_id}


def test_kept_traces_arrive_intact_and_dropped_ones_never(pipeline, tmp_path):
    tk, jaeger = pipeline
    dump = str(tmp_path / "sent.json")
    r = subprocess.run([sys.executable, os.path.join(HERE, "clients", "python_client.py"),
                        "--protocol", "grpc", "--endpoint", f"http://{tk.grpc}",
                        "--errors", "3", "--healthy", "3", "--service", "shop-api",
                        "--dump", dump], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ids = json.loads(r.stdout.strip().splitlines()[-1])
    with open(dump) as f:
        sent = json.load(f)

    for trace_id in ids["error"]:
        got = otlp.normalize(jaeger.wait_trace(trace_id, 2))
        want = otlp.tagged(only_trace(sent, trace_id), "errors")
        assert len(want) == 2
        assert got == want, f"trace {trace_id}:\n sent     {want}\n in Jaeger {got}"
        # And the values are the canonical ones (not just equal to a possibly empty dump).
        otlp.check_canonical(jaeger.trace(trace_id), "shop-api", error=True, policy="errors")

    # Healthy traces at a 0 % baseline: decided, dropped, and never forwarded. Once every kept
    # span was acknowledged by Jaeger, nothing else is on its way.
    peers.wait_for(lambda: tk.metric("tracekeep_sampler_traces_not_sampled_total") == 3, 30,
                   "3 healthy traces dropped")
    peers.wait_for(lambda: tk.metric("tracekeep_exporter_spans_exported_total") == 6, 30,
                   "6 kept spans acknowledged by Jaeger")
    assert tk.metric("tracekeep_exporter_queue_spans") == 0
    for trace_id in ids["healthy"]:
        assert jaeger.trace(trace_id) is None, f"dropped trace {trace_id} reached Jaeger"


any_value = otlp.any_value


def test_every_attribute_type_survives_including_kvlist_and_bytes(pipeline):
    """OTLP attribute types beyond what the SDKs' APIs produce: kvlist, bytes, nested and mixed
    arrays, on the span, its event, its link, the resource and the scope."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1 import trace_pb2

    tk, jaeger = pipeline
    trace_id = bytes.fromhex("7d1f0b5c3a2e4f6081726354a5b6c7d8")

    def attrs(d):
        return [KeyValue(key=k, value=any_value(v)) for k, v in d.items()]
    everything = {"s": "text", "b": True, "i": -42, "d": 2.25, "raw": b"\x00\x01\xfe\xff",
                  "arr": ["x", "y"], "mixed": [1, "two", 3.5, False],
                  "nested": {"order": {"id": "A-9", "items": [1, 2]}, "ok": True}}
    span = trace_pb2.Span(
        trace_id=trace_id, span_id=bytes.fromhex("1111222233334444"), name="every type",
        kind=trace_pb2.Span.SPAN_KIND_PRODUCER, trace_state="vendor=abc",
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_250_000_000, attributes=attrs(everything),
        events=[trace_pb2.Span.Event(time_unix_nano=1_700_000_000_100_000_000, name="e",
                                     attributes=attrs({"nested": {"k": b"\x10"}}))],
        links=[trace_pb2.Span.Link(trace_id=bytes.fromhex(otlp.LINK_TRACE_ID),
                                   span_id=bytes.fromhex(otlp.LINK_SPAN_ID),
                                   attributes=attrs({"arr": [1, 2]}))],
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="bad"))
    request = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=Resource(attributes=attrs({"service.name": "mes-api", "host.cpus": 2,
                                                "labels": {"team": "factory"}})),
            scope_spans=[trace_pb2.ScopeSpans(
                scope=InstrumentationScope(name="manual", version="0.1",
                                           attributes=attrs({"lib.flag": True})),
                spans=[span])])])
    with grpc.insecure_channel(tk.grpc) as channel:
        reply = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    assert reply.partial_success.rejected_spans == 0, reply

    got = otlp.normalize(jaeger.wait_trace(trace_id.hex(), 1))
    want = otlp.tagged(otlp.normalize(MessageToDict(request)), "errors")
    assert got == want, f"\n sent      {want}\n in Jaeger {got}"


def test_deploy_jaeger_config_is_valid():
    """deploy/jaeger.yaml, the config the README starts Jaeger with, is accepted by Jaeger."""
    r = subprocess.run([peers.JAEGER_BIN, "validate", "--config",
                        os.path.join(HERE, "..", "..", "deploy", "jaeger.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
