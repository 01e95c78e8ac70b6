"""Sends order traces across two services with the OpenTelemetry Python SDK, at given times.

Usage: shop_client.py --endpoint URL [--dump FILE] < spec.json
spec.json: [{"order": "O-1", "start_ns": ..., "shop_ms": 120, "crm_ms": 40, "error": false}, ...]

Each trace: shop-api's SERVER span "checkout" (order.id and attributes of every SDK type, an
event) calls, through its CLIENT span "reserve stock", crm-api's SERVER span "reserve" (a link;
status ERROR when "error"). The times are the spec's, so a test knows every duration and start.
Prints the trace ids (32 hex) as a JSON list, in spec order. With --dump, also writes the OTLP
request the SDK encoded for these spans (protobuf's JSON mapping) to FILE.
"""

import argparse
import json
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace import set_span_in_context

MS = 1_000_000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--dump", default="")
    a = p.parse_args()
    spec = json.load(sys.stdin)

    memory = InMemorySpanExporter()
    providers = {}
    for service in ("shop-api", "crm-api"):
        provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                            "deployment.environment": "test"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=a.endpoint, insecure=True), schedule_delay_millis=50))
        providers[service] = provider
    shop = providers["shop-api"].get_tracer("shop.checkout", "2.1.0")
    crm = providers["crm-api"].get_tracer("crm.stock", "0.9.0")

    ids = []
    for t in spec:
        start = t["start_ns"]
        root = shop.start_span("checkout", kind=SpanKind.SERVER, start_time=start, attributes={
            "order.id": t["order"], "order.paid": True, "order.items_count": 3,
            "order.total_price": 12.5, "order.tags": ["red", "large"], "order.sizes": [1, 2]})
        root.add_event("order.status_changed", {"order.status": "SUBMITTED"},
                       timestamp=start + MS // 2)
        call = shop.start_span("reserve stock", kind=SpanKind.CLIENT,
                               context=set_span_in_context(root), start_time=start + MS)
        link = Link(SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331,
                                is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)),
                    {"link.reason": "retry"})
        served = crm.start_span("reserve", kind=SpanKind.SERVER, context=set_span_in_context(call),
                                start_time=start + 2 * MS, links=[link],
                                attributes={"stock.warehouse": "W-1"})
        if t.get("error"):
            served.set_status(Status(StatusCode.ERROR, "out of stock"))
        served.end(end_time=start + 2 * MS + t["crm_ms"] * MS)
        call.end(end_time=start + 3 * MS + t["crm_ms"] * MS)
        root.end(end_time=start + t["shop_ms"] * MS)
        ids.append(format(root.get_span_context().trace_id, "032x"))

    for provider in providers.values():
        if not provider.force_flush(timeout_millis=30000):
            sys.exit("force_flush timed out")
        provider.shutdown()
    if a.dump:
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        with open(a.dump, "w") as f:
            json.dump(MessageToDict(encode_spans(memory.get_finished_spans())), f)
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
