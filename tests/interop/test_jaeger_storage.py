"""Jaeger v2 reading tracekeep's store over the remote storage API (jaeger.storage.v2).

A real, read-only Jaeger v2 query service (the shape of deploy/jaeger-query.yaml) is pointed at
tracekeep's jaeger_remote_storage listener; traces are sent to tracekeep with the OpenTelemetry
Python SDK (clients/shop_client.py: shop-api calling crm-api, at times the test chooses), and
with hand-built OTLP requests for what the SDKs cannot produce (kvlist and bytes attributes,
spans of megabytes). Everything is read back through Jaeger's HTTP APIs -- /api/v3/traces/{id},
/api/traces/{id}, /api/services, /api/operations, /api/traces?service=...&tags=...,
/api/dependencies -- and compared with what the test sent or computes from it.
"""

import json
import os
import subprocess
import sys
import time

import grpc
import pytest

import otlp
import peers

HERE = os.path.dirname(os.path.abspath(__file__))
POLICIES = "    - {name: everything, type: always_sample}"
SECOND = 1_000_000_000
MS = 1_000_000

if not os.access(peers.JAEGER_BIN, os.X_OK):
    pytest.skip(f"Jaeger v2 is not built at {peers.JAEGER_BIN}: scripts/setup.sh --peers builds "
                "it with Go >= 1.26 (see its log for why it could not)", allow_module_level=True)


@pytest.fixture
def pipeline(tmp_path):
    with peers.Tracekeep(str(tmp_path / "tk"), POLICIES, decision_wait="200ms") as tk:
        with peers.JaegerQuery(str(tmp_path / "jq"), tk.jaeger_storage) as jq:
            yield tk, jq


def send_shop_traces(tk, spec, dump=""):
    """Sends `spec` (see clients/shop_client.py) with the Python SDK; waits until tracekeep stored
    every span; returns the trace ids in spec order."""
    before = tk.metric("tracekeep_storage_spans_stored_total")
    argv = [sys.executable, os.path.join(HERE, "clients", "shop_client.py"),
            "--endpoint", f"http://{tk.grpc}"] + (["--dump", dump] if dump else [])
    r = subprocess.run(argv, input=json.dumps(spec), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    want = before + 3 * len(spec)
    peers.wait_for(lambda: tk.metric("tracekeep_storage_spans_stored_total") >= want, 30,
                   f"{3 * len(spec)} spans stored by tracekeep")
    return json.loads(r.stdout)


def trace_ids(body):
    return [t["traceID"] for t in body["data"]]


def us(nanos):
    return nanos // 1000


def test_sdk_traces_read_back_through_jaeger_as_sent(pipeline, tmp_path):
    tk, jq = pipeline
    now = time.time_ns()
    spec = [{"order": f"O-{i}", "start_ns": now - 30 * SECOND + i * SECOND, "shop_ms": 40 + i,
             "crm_ms": 5, "error": i == 1} for i in range(3)]
    dump = str(tmp_path / "sent.json")
    ids = send_shop_traces(tk, spec, dump)
    with open(dump) as f:
        sent = otlp.normalize(json.load(f))

    for trace_id in ids:
        want = otlp.tagged({sid: s for sid, s in sent.items() if s["trace_id"] == trace_id},
                           "everything")
        assert len(want) == 3
        status, body = jq.get(f"/api/v3/traces/{trace_id}")
        assert status == 200, body
        got = otlp.normalize(body["result"])
        assert got == want, f"trace {trace_id}:\n sent   {want}\n Jaeger {got}"

        # The classic API: Jaeger's own span model, converted by Jaeger from what tracekeep
        # streamed.
        status, body = jq.get(f"/api/traces/{trace_id}")
        assert status == 200, body
        [trace] = body["data"]
        assert trace["traceID"] == trace_id
        assert len(trace["spans"]) == 3
        for span in trace["spans"]:
            w = want[span["spanID"]]
            assert span["operationName"] == w["name"]
            assert trace["processes"][span["processID"]]["serviceName"] == \
                w["resource"]["service.name"][1]
            assert span["startTime"] == us(w["start"])
            assert span["duration"] == us(w["end"]) - us(w["start"])
            parents = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
            assert parents == ([w["parent_span_id"]] if w["parent_span_id"] else [])
            tags = {t["key"]: t["value"] for t in span["tags"]}
            for key, (kind, value) in w["attributes"].items():
                if kind in ("string", "bool", "int", "double"):
                    assert tags[key] == value, f"{key}: {tags.get(key)!r} != {value!r}"
            assert tags["span.kind"] == w["kind"].lower()
            assert (tags.get("error") is True) == (w["status"][0] == "ERROR")
            assert [{f["key"]: f["value"] for f in log["fields"]}["event"]
                    for log in span["logs"]] == [e[0] for e in w["events"]]

    unknown = "0123456789abcdef0123456789abcdef"
    assert jq.get(f"/api/v3/traces/{unknown}")[0] == 404
    assert jq.get(f"/api/traces/{unknown}")[0] == 404


def test_every_otlp_attribute_type_reads_back(pipeline):
    """kvlist, bytes and nested arrays on span, event, link, resource and scope: beyond the SDKs."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1 import trace_pb2

    tk, jq = pipeline
    trace_id = bytes.fromhex("5e1f0b5c3a2e4f6081726354a5b6c7d8")
    now = time.time_ns()
    everything = {"s": "text", "b": True, "i": -42, "d": 2.25, "raw": b"\x00\x01\xfe\xff",
                  "arr": ["x", "y"], "mixed": [1, "two", 3.5, False],
                  "nested": {"order": {"id": "A-9", "items": [1, 2]}, "ok": True}}
    span = trace_pb2.Span(
        trace_id=trace_id, span_id=bytes.fromhex("1111222233334444"), name="every type",
        kind=trace_pb2.Span.SPAN_KIND_PRODUCER, trace_state="vendor=abc",
        start_time_unix_nano=now - SECOND, end_time_unix_nano=now - SECOND + 250 * MS,
        attributes=otlp.attributes(everything),
        events=[trace_pb2.Span.Event(time_unix_nano=now - SECOND + MS, name="e",
                                     attributes=otlp.attributes({"nested": {"k": b"\x10"}}))],
        links=[trace_pb2.Span.Link(trace_id=bytes.fromhex(otlp.LINK_TRACE_ID),
                                   span_id=bytes.fromhex(otlp.LINK_SPAN_ID),
                                   attributes=otlp.attributes({"arr": [1, 2]}))],
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="bad"))
    request = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=Resource(attributes=otlp.attributes(
                {"service.name": "mes-api", "host.cpus": 2, "labels": {"team": "factory"}})),
            scope_spans=[trace_pb2.ScopeSpans(
                scope=InstrumentationScope(name="manual", version="0.1",
                                           attributes=otlp.attributes({"lib.flag": True})),
                spans=[span])])])
    with grpc.insecure_channel(tk.grpc) as channel:
        reply = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    assert reply.partial_success.rejected_spans == 0, reply
    tk.wait_trace(trace_id.hex(), 1)

    status, body = jq.get(f"/api/v3/traces/{trace_id.hex()}")
    assert status == 200, body
    want = otlp.tagged(otlp.normalize(MessageToDict(request)), "everything")
    assert otlp.normalize(body["result"]) == want
    # A kvlist value is searchable by its string form (JSON, keys sorted), as Jaeger compares.
    status, body = jq.get("/api/traces", service="mes-api",
                          tags=json.dumps({"labels": '{"team":"factory"}', "raw": "AAH+/w=="}),
                          start=us(now - 60 * SECOND), end=us(now))
    assert status == 200, body
    assert trace_ids(body) == [trace_id.hex()]


def test_services_operations_searches_and_dependencies(pipeline):
    tk, jq = pipeline
    now = time.time_ns()
    t0 = now - 100 * SECOND
    orders = ["O-1", "O-2", "O-1", "O-2", "O-1", "O-3", "O-4"]
    spec = [{"order": o, "start_ns": t0 + 10 * i * SECOND, "shop_ms": 20 + 30 * i,
             "crm_ms": 5 + i, "error": i == 3} for i, o in enumerate(orders)]
    ids = send_shop_traces(tk, spec)
    window = {"start": us(t0 - SECOND), "end": us(now)}

    def search(**params):
        status, body = jq.get("/api/traces", **dict(window, **params))
        assert status == 200, body
        return trace_ids(body)

    def newest_first(indexes):
        return [ids[i] for i in sorted(indexes, reverse=True)]

    status, body = jq.get("/api/services")
    assert status == 200 and sorted(body["data"]) == ["crm-api", "shop-api"], body
    assert sorted(jq.get("/api/services/shop-api/operations")[1]["data"]) == \
        ["checkout", "reserve stock"]
    assert jq.get("/api/services/crm-api/operations")[1]["data"] == ["reserve"]
    assert jq.get("/api/operations", service="shop-api", spanKind="client")[1]["data"] == \
        [{"name": "reserve stock", "spanKind": "client"}]

    # Every kept trace of an order, newest first; the limit keeps the newest.
    o1 = [i for i, o in enumerate(orders) if o == "O-1"]
    assert search(service="shop-api", tags=json.dumps({"order.id": "O-1"})) == newest_first(o1)
    assert search(service="shop-api", tags=json.dumps({"order.id": "O-1"}), limit=2) == \
        newest_first(o1)[:2]
    assert search(service="shop-api", tags=json.dumps({"order.id": "O-9"})) == []
    # The tag must be on a span of the searched service: crm-api's spans have no order.id.
    assert search(service="crm-api", tags=json.dumps({"order.id": "O-1"})) == []
    assert search(service="shop-api", operation="checkout", limit=3) == newest_first(range(7))[:3]

    # Durations: a span of the service within the bounds.
    assert search(service="shop-api", minDuration="100ms") == \
        newest_first(i for i in range(7) if 20 + 30 * i >= 100)
    assert search(service="crm-api", maxDuration="7ms") == \
        newest_first(i for i in range(7) if 5 + i <= 7)
    assert search(service="crm-api", minDuration="6ms", maxDuration="8ms") == \
        newest_first(i for i in range(7) if 6 <= 5 + i <= 8)
    assert search(service="crm-api", tags=json.dumps({"error": "true"})) == [ids[3]]

    # A time window: traces whose spans of the service start in it.
    status, body = jq.get("/api/traces", service="shop-api", start=us(t0 + 15 * SECOND),
                          end=us(t0 + 45 * SECOND))
    assert status == 200, body
    assert trace_ids(body) == newest_first([2, 3, 4])

    # Dependencies: parent service -> child service, one call per trace and edge, counted over
    # the window (to the minute of the traces' starts).
    def deps(end_ns, lookback_ns):
        status, body = jq.get("/api/dependencies", endTs=end_ns // MS, lookback=lookback_ns // MS)
        assert status == 200, body
        return sorted((d["parent"], d["child"], d["callCount"]) for d in body["data"] or [])
    assert deps(now, 3600 * SECOND) == [("shop-api", "crm-api", 7), ("shop-api", "shop-api", 7)]
    assert deps(t0 - 120 * SECOND, 600 * SECOND) == [], "a window before every trace"

    # Bad requests reach tracekeep and come back with its INVALID_ARGUMENT message (Jaeger's
    # HTTP API answers them with 500); nothing crashes.
    status, body = jq.get("/api/traces", service="shop-api", start=us(now), end=us(t0))
    assert status >= 400 and "start_time_max" in json.dumps(body), body
    status, body = jq.get("/api/traces", service="shop-api", minDuration="-5ms", **window)
    assert status >= 400 and "duration_min: must be >= 0" in json.dumps(body), body
    assert tk.metric("tracekeep_jaeger_storage_request_errors_total",
                     'method="FindTraces"') >= 2
    assert search(service="shop-api", limit=1) == [ids[6]], "still serving"


def test_a_trace_over_4_mib_arrives_whole(pipeline):
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1 import trace_pb2

    tk, jq = pipeline
    trace_id = bytes.fromhex("b16b00b5b16b00b5b16b00b5b16b00b5")
    now = time.time_ns()
    spans = [trace_pb2.Span(trace_id=trace_id, span_id=(i + 1).to_bytes(8, "big"),
                            parent_span_id=b"" if i == 0 else (1).to_bytes(8, "big"),
                            name=f"part {i}", start_time_unix_nano=now - SECOND + i,
                            end_time_unix_nano=now,
                            attributes=otlp.attributes({"blob": chr(97 + i) * (900 * 1024)}))
             for i in range(7)]  # 7 x 900 KiB: 6.2 MiB
    request = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(resource=Resource(attributes=otlp.attributes(
            {"service.name": "big-api"})), scope_spans=[trace_pb2.ScopeSpans(spans=spans)])])
    with grpc.insecure_channel(tk.grpc) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)
    peers.wait_for(lambda: tk.metric("tracekeep_storage_spans_stored_total") >= 7, 30,
                   "7 spans stored")
    chunks_before = tk.metric("tracekeep_jaeger_storage_chunks_sent_total")

    status, body = jq.get(f"/api/v3/traces/{trace_id.hex()}")
    assert status == 200, str(body)[:500]
    got = otlp.normalize(body["result"])
    assert sorted(s["name"] for s in got.values()) == [f"part {i}" for i in range(7)]
    for s in got.values():
        i = int(s["name"].split()[1])
        assert s["attributes"]["blob"] == ("string", chr(97 + i) * (900 * 1024))
    assert tk.metric("tracekeep_jaeger_storage_chunks_sent_total") - chunks_before >= 2, \
        "split over several stream messages"


def test_empty_store_then_a_restart_keeps_everything_readable(tmp_path):
    port = peers.free_port()
    endpoint = f"127.0.0.1:{port}"
    tk_dir = str(tmp_path / "tk")
    tk = peers.Tracekeep(tk_dir, POLICIES, jaeger_storage_endpoint=endpoint)
    with peers.JaegerQuery(str(tmp_path / "jq"), endpoint) as jq:
        with tk:
            now = time.time_ns()
            # Jaeger writes an empty list as null.
            assert not jq.get("/api/services")[1]["data"]
            status, body = jq.get("/api/traces", service="shop-api", start=us(now - 60 * SECOND),
                                  end=us(now))
            assert status == 200 and not body["data"], body
            status, body = jq.get("/api/dependencies", endTs=now // MS, lookback=3600_000)
            assert status == 200 and not body["data"], body
            spec = [{"order": "R-1", "start_ns": now - 5 * SECOND, "shop_ms": 30, "crm_ms": 5}]
            ids = send_shop_traces(tk, spec)
        with peers.Tracekeep(tk_dir, POLICIES, jaeger_storage_endpoint=endpoint) as tk2:
            def readable():
                status, body = jq.get(f"/api/traces/{ids[0]}")
                return status == 200 and len(body["data"][0]["spans"]) == 3
            peers.wait_for(readable, 30, "the trace through Jaeger after tracekeep restarted")
            status, body = jq.get("/api/traces", service="shop-api",
                                  tags=json.dumps({"order.id": "R-1"}),
                                  start=us(now - 60 * SECOND), end=us(time.time_ns()))
            assert trace_ids(body) == ids
            assert sorted(jq.get("/api/services")[1]["data"]) == ["crm-api", "shop-api"]
            assert tk2.alive()


def test_traces_past_the_retention_are_gone_from_jaeger(tmp_path):
    with peers.Tracekeep(str(tmp_path / "tk"), POLICIES, retention="1h") as tk:
        with peers.JaegerQuery(str(tmp_path / "jq"), tk.jaeger_storage) as jq:
            now = time.time_ns()
            spec = [{"order": "X-1", "start_ns": now - 7200 * SECOND, "shop_ms": 30, "crm_ms": 5},
                    {"order": "X-1", "start_ns": now - 10 * SECOND, "shop_ms": 30, "crm_ms": 5}]
            old, young = send_shop_traces(tk, spec)
            assert jq.get(f"/api/traces/{old}")[0] == 404
            assert jq.get(f"/api/traces/{young}")[0] == 200
            status, body = jq.get("/api/traces", service="shop-api",
                                  tags=json.dumps({"order.id": "X-1"}),
                                  start=us(now - 3 * 3600 * SECOND), end=us(time.time_ns()))
            assert status == 200 and trace_ids(body) == [young], body
            status, body = jq.get("/api/dependencies", endTs=time.time_ns() // MS,
                                  lookback=3 * 3600_000)
            assert sorted((d["parent"], d["child"], d["callCount"]) for d in body["data"]) == \
                [("shop-api", "crm-api", 1), ("shop-api", "shop-api", 1)]


def test_deploy_jaeger_query_config_is_valid():
    """deploy/jaeger-query.yaml, the read-only Jaeger the README starts, is accepted by Jaeger."""
    r = subprocess.run([peers.JAEGER_BIN, "validate", "--config",
                        os.path.join(HERE, "..", "..", "deploy", "jaeger-query.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
