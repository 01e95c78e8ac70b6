"""Sends many spans with the OpenTelemetry Python SDK (OTLP/gRPC) and describes what it sent, so a
test can compute the request metrics tracekeep must report.

Usage: span_metrics_client.py --endpoint URL --spans N [--seed S] [--names K] [--batch B]
       span_metrics_client.py --endpoint URL --plan JSON
With --plan, sends exactly the spans of the plan instead of random ones: a JSON list of
[service, name, kind ("SPAN_KIND_SERVER", ...), status ("STATUS_CODE_OK", ...), duration_ns,
count], each span a trace of its own.
Prints one JSON object: {"spans": [[service, name, kind, status, duration_ns, route,
environment, exceptions], ...], "traces": T}. `route` is the span's http.route ("" when absent),
`environment` its resource's deployment.environment ("" when absent), `exceptions` the
exception.type of each exception event. Every span has an explicit start and end time, so its
duration is exactly known. Spans are finished into memory and exported in batches of B by the
SDK's OTLP exporter; the client fails if any export fails (nothing is dropped silently).
"""

import argparse
import json
import random
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

SERVICES = [("shop-api", "production"), ("crm-api", "staging"), ("mes-api", None)]
KINDS = [(SpanKind.SERVER, "SPAN_KIND_SERVER"), (SpanKind.CLIENT, "SPAN_KIND_CLIENT"),
         (SpanKind.INTERNAL, "SPAN_KIND_INTERNAL"), (SpanKind.PRODUCER, "SPAN_KIND_PRODUCER"),
         (SpanKind.CONSUMER, "SPAN_KIND_CONSUMER")]
ROUTES = ["/orders/{id}", "/cart", ""]
# Durations around the default bucket bounds (ms): exactly on a bound, just above, and between.
DURATIONS_NS = [0, 1_999_999, 2_000_000, 2_000_001, 5_500_000, 10_000_000, 49_000_000,
                150_000_000, 999_999_999, 1_000_000_000, 3_000_000_000, 14_999_000_000,
                16_000_000_000]
START = 1_700_000_000_000_000_000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--spans", type=int, default=0)
    p.add_argument("--plan", default="")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--names", type=int, default=6, help="distinct span names")
    p.add_argument("--batch", type=int, default=2000, help="spans per export request")
    a = p.parse_args()
    rng = random.Random(a.seed)

    memory = InMemorySpanExporter()
    tracers = []
    for service, environment in SERVICES:
        attrs = {"service.name": service}
        if environment:
            attrs["deployment.environment"] = environment
        provider = TracerProvider(resource=Resource.create(attrs))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracers.append(provider.get_tracer("tracekeep.spanmetrics", "1.0.0"))

    sent, traces, i = [], 0, 0
    if a.plan:
        kinds = {n: k for k, n in KINDS}
        services = [s for s, _ in SERVICES]
        for service, name, kind_name, status_name, duration, count in json.loads(a.plan):
            for _ in range(count):
                start = START + i * 1000
                span = tracers[services.index(service)].start_span(
                    name, kind=kinds[kind_name], start_time=start)
                if status_name == "STATUS_CODE_OK":
                    span.set_status(Status(StatusCode.OK))
                elif status_name == "STATUS_CODE_ERROR":
                    span.set_status(Status(StatusCode.ERROR, "failed"))
                span.end(end_time=start + duration)
                sent.append([service, name, kind_name, status_name, duration, "",
                             dict(SERVICES)[service] or "", []])
                traces += 1
                i += 1
        a.spans = i
    while i < a.spans:
        # A trace of 1-6 spans; its spans come from random services.
        traces += 1
        parent_ctx = None
        for _ in range(min(rng.randint(1, 6), a.spans - i)):
            s = rng.randrange(len(SERVICES))
            kind, kind_name = KINDS[rng.randrange(len(KINDS))]
            name = f"op-{rng.randrange(a.names)}"
            duration = DURATIONS_NS[rng.randrange(len(DURATIONS_NS))]
            start = START + i * 1000
            span = tracers[s].start_span(name, context=parent_ctx, kind=kind, start_time=start)
            route = ROUTES[rng.randrange(len(ROUTES))]
            if route:
                span.set_attribute("http.route", route)
            status = rng.randrange(3)
            if status == 1:
                span.set_status(Status(StatusCode.OK))
            elif status == 2:
                span.set_status(Status(StatusCode.ERROR, "failed"))
            exceptions = []
            if rng.random() < 0.05:  # hidden exceptions, also on OK and UNSET spans
                for exc in ([ValueError("bad")] if rng.random() < 0.5
                            else [TimeoutError("slow"), ValueError("bad")]):
                    span.record_exception(exc)
                    exceptions.append(type(exc).__name__)
            span.end(end_time=start + duration)
            if parent_ctx is None:
                parent_ctx = set_span_in_context(span)
            sent.append([SERVICES[s][0], name, kind_name,
                         ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"][status],
                         duration, route, SERVICES[s][1] or "", exceptions])
            i += 1

    exporter = OTLPSpanExporter(endpoint=a.endpoint, insecure=True, timeout=60)
    finished = memory.get_finished_spans()
    if len(finished) != a.spans:
        sys.exit(f"{len(finished)} spans finished, {a.spans} expected")
    for b in range(0, len(finished), a.batch):
        if exporter.export(finished[b:b + a.batch]) != SpanExportResult.SUCCESS:
            sys.exit(f"export of spans {b}..{b + a.batch} failed")
    exporter.shutdown()
    json.dump({"spans": sent, "traces": traces}, sys.stdout)


if __name__ == "__main__":
    main()
