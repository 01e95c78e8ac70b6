"""The canonical interop trace and a normal form of OTLP JSON to compare traces field by field.

Every client (C++, Python, JavaScript SDKs) builds the same trace, described by CANONICAL below:
a SERVER root span with attributes of every type the SDKs support and an event, and a CLIENT
child span with a link and (for error traces) status ERROR. The comparison works on the OTLP
JSON mapping as produced by `tracekeepctl trace get --json`, Jaeger's /api/v3 and protobuf's
MessageToDict alike: ids in hex or base64, enums as names or numbers, 64-bit ints as strings or
numbers are all brought to one form first.
"""

import base64
import re

LINK_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
LINK_SPAN_ID = "b7ad6b7169203331"
SCOPE_NAME = "tracekeep.interop"
SCOPE_VERSION = "1.0.0"

SPAN_KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
STATUS_CODES = ["UNSET", "OK", "ERROR"]


def canonical(service, error):
    """What a client was asked to send, in normal form (see `normalize`), keyed by span name."""
    return {
        "resource": {"service.name": ("string", service)},
        "scope": (SCOPE_NAME, SCOPE_VERSION),
        "spans": {
            "checkout": {
                "kind": "SERVER",
                "parent": None,
                "attributes": {
                    "order.id": ("string", "A-1"),
                    "order.paid": ("bool", True),
                    "order.items_count": ("int", 3),
                    "order.total_price": ("double", 12.5),
                    "order.tags": ("array", (("string", "red"), ("string", "large"))),
                    "order.sizes": ("array", (("int", 1), ("int", 2))),
                },
                "events": [("order.status_changed",
                            {"order.status": ("string", "SUBMITTED"), "attempt": ("int", 2)})],
                "links": [],
                "status": ("UNSET", ""),
            },
            "db.query": {
                "kind": "CLIENT",
                "parent": "checkout",
                "attributes": {"db.system": ("string", "postgresql")},
                "events": [],
                "links": [(LINK_TRACE_ID, LINK_SPAN_ID, {"link.reason": ("string", "retry")})],
                "status": ("ERROR", "connection reset") if error else ("UNSET", ""),
            },
        },
    }


def _id(value, length):
    """Hex id from either hex (OTLP JSON) or base64 (proto3 JSON)."""
    if not value:
        return ""
    if len(value) == length and re.fullmatch(r"[0-9a-fA-F]+", value):
        return value.lower()
    return base64.b64decode(value).hex()


def _enum(value, names, prefix):
    if isinstance(value, int):
        return names[value]
    if value is None:
        return names[0]
    return value[len(prefix):] if value.startswith(prefix) else value


def _any(v):
    if not v:
        return ("empty", None)
    (kind, val), = v.items()
    if kind == "stringValue":
        return ("string", val)
    if kind == "boolValue":
        return ("bool", bool(val))
    if kind == "intValue":
        return ("int", int(val))
    if kind == "doubleValue":
        return ("double", float(val))
    if kind == "arrayValue":
        return ("array", tuple(_any(x) for x in val.get("values", [])))
    if kind == "kvlistValue":
        return ("kvlist", tuple(sorted((kv["key"], _any(kv.get("value", {})))
                                       for kv in val.get("values", []))))
    if kind == "bytesValue":
        return ("bytes", base64.b64decode(val))
    raise ValueError(f"unknown AnyValue {v}")


def _attrs(kvs):
    return {kv["key"]: _any(kv.get("value", {})) for kv in kvs or []}


def normalize(otlp, with_times=True):
    """OTLP JSON of one trace -> {span_id: {...every field...}} with resource and scope per span."""
    spans = {}
    for rs in otlp.get("resourceSpans", []):
        resource = _attrs(rs.get("resource", {}).get("attributes"))
        for ss in rs.get("scopeSpans", []):
            scope = ss.get("scope", {})
            scope_key = (scope.get("name", ""), scope.get("version", ""),
                         tuple(sorted(_attrs(scope.get("attributes")).items())))
            for s in ss.get("spans", []):
                span_id = _id(s.get("spanId"), 16)
                status = s.get("status", {})
                n = {
                    "trace_id": _id(s.get("traceId"), 32),
                    "parent_span_id": _id(s.get("parentSpanId", ""), 16),
                    "name": s.get("name", ""),
                    "kind": _enum(s.get("kind"), SPAN_KINDS, "SPAN_KIND_"),
                    "trace_state": s.get("traceState", ""),
                    "flags": int(s.get("flags", 0)),
                    "attributes": _attrs(s.get("attributes")),
                    "dropped_attributes_count": int(s.get("droppedAttributesCount", 0)),
                    "events": [(e.get("name", ""), int(e.get("timeUnixNano", 0)) if with_times else 0,
                                _attrs(e.get("attributes"))) for e in s.get("events", [])],
                    "links": [(_id(l.get("traceId"), 32), _id(l.get("spanId"), 16),
                               l.get("traceState", ""), _attrs(l.get("attributes")))
                              for l in s.get("links", [])],
                    "status": (_enum(status.get("code"), STATUS_CODES, "STATUS_CODE_"),
                               status.get("message", "")),
                    "resource": resource,
                    "scope": scope_key,
                }
                if with_times:
                    n["start"] = int(s.get("startTimeUnixNano", 0))
                    n["end"] = int(s.get("endTimeUnixNano", 0))
                spans[span_id] = n
    return spans


def tagged(spans, policy):
    """`spans` (normal form) as tracekeep keeps them: each with tracekeep.policy = `policy`."""
    return {sid: dict(s, attributes=dict(s["attributes"], **{"tracekeep.policy": ("string", policy)}))
            for sid, s in spans.items()}


def check_canonical(otlp, service, error, policy):
    """Asserts that the stored trace `otlp` is exactly the canonical trace a client sent, kept by
    the sampling policy named `policy` (tracekeep tags every kept span with tracekeep.policy).

    The SDK's own resource attributes (telemetry.sdk.*) are allowed beside the canonical ones;
    every canonical field must be present with its type and value, and nothing else may be on
    the spans.
    """
    want = canonical(service, error)
    got = normalize(otlp)
    assert len(got) == 2, f"expected 2 spans, got {len(got)}: {got}"
    by_name = {s["name"]: (sid, s) for sid, s in got.items()}
    assert set(by_name) == set(want["spans"]), f"span names {set(by_name)}"
    trace_ids = {s["trace_id"] for s in got.values()}
    assert len(trace_ids) == 1, trace_ids
    for name, w in want["spans"].items():
        sid, s = by_name[name]
        where = f"{service} span {name!r}"
        for key, value in want["resource"].items():
            assert s["resource"].get(key) == value, f"{where}: resource {key}: {s['resource']}"
        assert s["scope"][:2] == want["scope"], f"{where}: scope {s['scope']}"
        assert s["kind"] == w["kind"], f"{where}: kind {s['kind']}"
        parent = "" if w["parent"] is None else by_name[w["parent"]][0]
        assert s["parent_span_id"] == parent, f"{where}: parent {s['parent_span_id']}"
        want_attributes = dict(w["attributes"], **{"tracekeep.policy": ("string", policy)})
        assert s["attributes"] == want_attributes, f"{where}: attributes {s['attributes']}"
        assert [(e[0], e[2]) for e in s["events"]] == w["events"], f"{where}: events {s['events']}"
        assert [(l[0], l[1], l[3]) for l in s["links"]] == w["links"], f"{where}: links {s['links']}"
        assert s["status"] == w["status"], f"{where}: status {s['status']}"
        assert 0 < s["start"] <= s["end"], f"{where}: times {s['start']}..{s['end']}"


def any_value(v):
    """A Python value as an OTLP AnyValue message (bytes, lists and dicts included)."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
    from opentelemetry.proto.common.v1.common_pb2 import KeyValueList
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(
            values=[KeyValue(key=k, value=any_value(x)) for k, x in v.items()]))
    raise TypeError(v)


def attributes(d):
    """A dict as a list of OTLP KeyValue messages."""
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue
    return [KeyValue(key=k, value=any_value(v)) for k, v in d.items()]
