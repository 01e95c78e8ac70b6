"""Sends canonical interop traces (tests/interop/otlp.py) with the OpenTelemetry Python SDK.

Usage: python_client.py --protocol grpc|http/protobuf|http/json --endpoint URL
                        [--compression gzip|none] [--errors N] [--healthy N] [--service NAME]
                        [--dump FILE] [--ca FILE [--client-cert FILE --client-key FILE]]
Prints {"error": [trace ids], "healthy": [trace ids]} as JSON. With --dump, also writes the OTLP
request the SDK encoded for these spans (protobuf's JSON mapping) to FILE, so a test can compare
what a backend returns with exactly what was sent.
"""

import argparse
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace import set_span_in_context

LINK_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
LINK_SPAN_ID = 0xB7AD6B7169203331


def make_exporter(protocol, endpoint, compression, tls=None):
    if protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=endpoint, insecure=True,
                                compression=Compression.Gzip if compression == "gzip"
                                else Compression.NoCompression)
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=endpoint + "/v1/traces",
                                compression=Compression.Gzip if compression == "gzip"
                                else Compression.NoCompression, **(tls or {}))
    if protocol == "http/json":
        from opentelemetry.exporter.otlp.common.http import Compression
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=endpoint + "/v1/traces",
                                compression=Compression.GZIP if compression == "gzip"
                                else Compression.NONE)
    raise SystemExit(f"unknown --protocol {protocol}")


def send_trace(tracer, error):
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("order.id", "A-1")
        root.set_attribute("order.paid", True)
        root.set_attribute("order.items_count", 3)
        root.set_attribute("order.total_price", 12.5)
        root.set_attribute("order.tags", ["red", "large"])
        root.set_attribute("order.sizes", [1, 2])
        root.add_event("order.status_changed", {"order.status": "SUBMITTED", "attempt": 2})
        link = Link(SpanContext(LINK_TRACE_ID, LINK_SPAN_ID, is_remote=True,
                                trace_flags=TraceFlags(TraceFlags.SAMPLED)),
                    {"link.reason": "retry"})
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT, links=[link]) as child:
            child.set_attribute("db.system", "postgresql")
            if error:
                child.set_status(Status(StatusCode.ERROR, "connection reset"))
        return format(root.get_span_context().trace_id, "032x")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--compression", default="none")
    p.add_argument("--errors", type=int, default=1)
    p.add_argument("--healthy", type=int, default=0)
    p.add_argument("--service", default="interop-python")
    p.add_argument("--dump", default="")
    p.add_argument("--ca", default="", help="http/protobuf over https: CA of the server")
    p.add_argument("--client-cert", default="", help="with --ca: client certificate (mTLS)")
    p.add_argument("--client-key", default="", help="with --client-cert: its key")
    a = p.parse_args()
    tls = {}
    if a.ca:
        tls["certificate_file"] = a.ca
    if a.client_cert:
        tls["client_certificate_file"] = a.client_cert
        tls["client_key_file"] = a.client_key

    provider = TracerProvider(resource=Resource.create({"service.name": a.service}))
    exporter = make_exporter(a.protocol, a.endpoint, a.compression, tls)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    # One export request per span would also work; a batch per trace is what services do.
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("tracekeep.interop", "1.0.0")

    out = {"error": [send_trace(tracer, True) for _ in range(a.errors)],
           "healthy": [send_trace(tracer, False) for _ in range(a.healthy)]}
    if not provider.force_flush(timeout_millis=30000):
        sys.exit("force_flush timed out")
    provider.shutdown()
    if a.dump:
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        with open(a.dump, "w") as f:
            json.dump(MessageToDict(encode_spans(memory.get_finished_spans())), f)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
