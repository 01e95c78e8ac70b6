"""A scripted client for the security preset: sends, with the OpenTelemetry Python SDK over
OTLP/gRPC, one trace per kind of attack or careless code the preset looks for, and clean traces
that resemble them. Each trace is a SERVER span with a CLIENT child (a database call or an
outgoing request).

Usage: security_client.py --endpoint URL
Prints {"attack": {"<what>": "<trace id>", ...}, "clean": {"<what>": "<trace id>", ...}}.
"""

import argparse
import json

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

# what -> (service, server span attributes, child attributes, exception on an OK child)
ATTACKS = {
    "path-traversal": ("shop-api", {"url.path": "/static/../../etc/passwd",
                                    "http.response.status_code": 404}, {}, False),
    "path-traversal-encoded": ("shop-api", {"http.target": "/files/%2e%2e%2f%2e%2e%2fetc/shadow",
                                            "http.status_code": 400}, {}, False),
    "sql-injection-statement": ("crm-api", {"url.path": "/customers",
                                            "http.response.status_code": 200},
                                {"db.system": "postgresql",
                                 "db.statement": "SELECT * FROM users WHERE name = '' OR '1'='1'"},
                                False),
    "sql-injection-union": ("crm-api", {"url.path": "/search", "http.response.status_code": 200},
                            {"db.system": "mysql",
                             "db.statement": "SELECT id FROM items WHERE q='x' UNION SELECT "
                                             "password FROM users"}, False),
    "sql-injection-query": ("shop-api", {"url.path": "/orders", "url.query": "id=1%27%20OR%201=1",
                                         "http.response.status_code": 200}, {}, False),
    "unauthorized": ("shop-api", {"url.path": "/admin", "http.response.status_code": 401}, {},
                     False),
    "forbidden-old-semconv": ("crm-api", {"http.target": "/admin", "http.status_code": 403}, {},
                              False),
    "throttled": ("mes-api", {"url.path": "/machines", "http.response.status_code": 429}, {},
                  False),
    "oversized": ("shop-api", {"url.path": "/upload", "http.request.body.size": 50 * 1024 * 1024,
                               "http.response.status_code": 200}, {}, False),
    "unknown-service": ("unknown_service:python", {"url.path": "/", "http.response.status_code":
                                                   200}, {}, False),
    "hidden-exception": ("mes-api", {"url.path": "/machines/7", "http.response.status_code": 200},
                         {"db.system": "redis"}, True),
}
CLEAN = {
    "order": ("shop-api", {"url.path": "/orders/42", "http.response.status_code": 200},
              {"db.system": "postgresql",
               "db.statement": "SELECT id, status FROM orders WHERE id = $1"}, False),
    "search": ("crm-api", {"url.path": "/search", "url.query": "q=o%27brien&page=2",
                           "http.response.status_code": 200},
               {"db.system": "postgresql",
                "db.statement": "SELECT id FROM customers WHERE name = $1 -- by name\nLIMIT 20"},
               False),
    "not-found": ("shop-api", {"url.path": "/orders/missing", "http.response.status_code": 404},
                  {}, False),
    "upload": ("shop-api", {"url.path": "/upload", "http.request.body.size": 200_000,
                            "http.response.status_code": 201}, {}, False),
    "dotted-name": ("mes-api", {"url.path": "/files/report.v2..final.pdf",
                                "http.response.status_code": 200}, {}, False),
    "old-semconv": ("crm-api", {"http.target": "/customers?page=3", "http.status_code": 200}, {},
                    False),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    a = p.parse_args()
    memory = InMemorySpanExporter()
    providers = {}

    def tracer(service):
        if service not in providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(SimpleSpanProcessor(memory))
            providers[service] = provider
        return providers[service].get_tracer("tracekeep.security", "1.0.0")

    out = {"attack": {}, "clean": {}}
    for group, traces in (("attack", ATTACKS), ("clean", CLEAN)):
        for what, (service, server_attrs, child_attrs, exception) in traces.items():
            t = tracer(service)
            with t.start_as_current_span(f"{what} request", kind=SpanKind.SERVER,
                                         attributes=server_attrs) as root:
                with t.start_as_current_span("call", kind=SpanKind.CLIENT,
                                             attributes=child_attrs) as child:
                    if exception:
                        child.record_exception(TimeoutError("retrying"))
                        child.set_status(Status(StatusCode.OK))
                out[group][what] = format(root.get_span_context().trace_id, "032x")

    exporter = OTLPSpanExporter(endpoint=a.endpoint, insecure=True, timeout=30)
    if exporter.export(memory.get_finished_spans()) != SpanExportResult.SUCCESS:
        raise SystemExit("export failed")
    exporter.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
