"""Request metrics from every span, before sampling, with real processes: the OpenTelemetry Python
SDK sends many spans to the real tracekeep, which keeps 1 % of the traces; every
traces_span_metrics_* series on /metrics equals what the test computes from what the SDK sent
(calls exactly, each duration in its bucket), and so do the exception counts. The cardinality
limit sends new label sets to the overflow series, and spans the journal replays after a kill -9
are not counted again. A real Prometheus scrapes them and a real Jaeger v2's Monitor tab shows
them."""

import bisect
import collections
import json
import os
import re
import subprocess
import sys
import time

import pytest

import peers

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "clients", "span_metrics_client.py")
# The OpenTelemetry spanmetrics connector's default buckets, in ms.
BOUNDS_MS = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000]
SPANS = int(os.environ.get("SPAN_METRICS_SPANS", "100000"))
ONE_PERCENT = "    - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 1}}"
DIMENSIONS = """span_metrics:
  dimensions:
    - {name: http.route}
    - {name: deployment.environment, default: none}
"""
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text, name):
    """{frozenset(labels): value} of the samples of metric `name` in an exposition."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            out[frozenset(LABEL.findall(m.group(2) or ""))] = float(m.group(3))
    return out


def total(text, name):
    return sum(samples(text, name).values())


def send(tk, spans, **kw):
    argv = [sys.executable, CLIENT, "--endpoint", f"http://{tk.grpc}", "--spans", str(spans)]
    for k, v in kw.items():
        argv += [f"--{k}", str(v)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout)


def expected_series(sent, dimensions):
    """What the spanmetrics connector would report for the spans sent."""
    calls = collections.Counter()
    buckets = collections.defaultdict(lambda: [0] * (len(BOUNDS_MS) + 1))
    sums = collections.defaultdict(float)
    exceptions = collections.Counter()
    for service, name, kind, status, duration_ns, route, environment, types in sent:
        labels = {"service_name": service, "span_name": name, "span_kind": kind,
                  "status_code": status}
        if dimensions:
            if route:
                labels["http_route"] = route
            labels["deployment_environment"] = environment or "none"
        key = frozenset(labels.items())
        ms = duration_ns / 1e6
        calls[key] += 1
        buckets[key][bisect.bisect_left(BOUNDS_MS, ms)] += 1  # bounds are inclusive (le)
        sums[key] += ms
        for t in types:
            exceptions[frozenset({"service_name": service, "exception_type": t,
                                  "status_code": status}.items())] += 1
    return calls, buckets, sums, exceptions


def test_every_series_equals_what_was_sent_while_one_percent_is_kept(tmp_path):
    with peers.Tracekeep(str(tmp_path / "tk"), ONE_PERCENT, decision_wait="1s",
                         extra=DIMENSIONS) as tk:
        out = send(tk, SPANS)
        sent = out["spans"]
        assert len(sent) == SPANS
        calls, buckets, sums, exceptions = expected_series(sent, dimensions=True)
        text = tk.metrics()

        got_calls = samples(text, "traces_span_metrics_calls_total")
        assert got_calls == {k: float(v) for k, v in calls.items()}
        got_buckets = samples(text, "traces_span_metrics_duration_milliseconds_bucket")
        got_counts = samples(text, "traces_span_metrics_duration_milliseconds_count")
        got_sums = samples(text, "traces_span_metrics_duration_milliseconds_sum")
        assert len(got_buckets) == len(calls) * (len(BOUNDS_MS) + 1)
        for key, per_bucket in buckets.items():
            cumulative = 0
            for i, n in enumerate(per_bucket):
                cumulative += n
                le = "+Inf" if i == len(BOUNDS_MS) else str(BOUNDS_MS[i])
                assert got_buckets[key | {("le", le)}] == cumulative, (sorted(key), le)
            assert got_counts[key] == calls[key]
            assert abs(got_sums[key] - sums[key]) <= 1e-9 * max(1.0, sums[key]), sorted(key)
        assert samples(text, "tracekeep_span_exceptions_total") == \
            {k: float(v) for k, v in exceptions.items()}
        assert any(("status_code", "STATUS_CODE_OK") in k for k in exceptions), \
            "the client sent exceptions on OK spans"
        assert tk.metric("tracekeep_span_metrics_overflow_total", 'metric="calls"') == 0

        # Meanwhile the sampler kept about 1 % of the traces: the metrics did not come from them.
        def decided():
            t = tk.metrics()
            n = (total(t, "tracekeep_sampler_traces_sampled_total") +
                 total(t, "tracekeep_sampler_traces_not_sampled_total"))
            return t if n >= out["traces"] else None
        t = peers.wait_for(decided, 120, "the sampler to decide every trace")
        kept = total(t, "tracekeep_sampler_traces_sampled_total")
        assert 0 < kept < 0.03 * out["traces"], (kept, out["traces"])
        assert total(t, "tracekeep_storage_spans_stored_total") < 0.05 * SPANS


def test_label_sets_beyond_the_limit_are_counted_in_the_overflow_series(tmp_path):
    limit = 5
    with peers.Tracekeep(str(tmp_path / "tk"), ONE_PERCENT,
                         extra=f"span_metrics: {{aggregation_cardinality_limit: {limit}}}\n") as tk:
        sent = send(tk, 3000, names=12, seed=7)["spans"]
        calls, _, _, _ = expected_series(sent, dimensions=False)
        assert len(calls) > 3 * limit
        text = tk.metrics()
        got = samples(text, "traces_span_metrics_calls_total")
        overflow_key = frozenset({("otel_metric_overflow", "true")})
        overflow = got.pop(overflow_key)
        # `limit` label sets have series of their own, each exact; every other span is in the
        # overflow series, and counted.
        assert len(got) == limit
        for key, value in got.items():
            assert value == calls[key], sorted(key)
        assert overflow == len(sent) - sum(got.values()) > 0
        assert tk.metric("tracekeep_span_metrics_overflow_total", 'metric="calls"') == overflow
        assert tk.metric("tracekeep_span_metrics_series", 'metric="calls"') == limit + 1
        assert samples(text, "traces_span_metrics_duration_milliseconds_count")[overflow_key] == \
            overflow


def test_spans_replayed_from_the_journal_after_a_kill_are_not_counted_again(tmp_path):
    workdir = str(tmp_path / "tk")
    # A long decision wait: the spans are still pending, in the journal, when tracekeep dies.
    with peers.Tracekeep(workdir, ONE_PERCENT, decision_wait="10m") as tk:
        first = send(tk, 500, seed=3)["spans"]
        assert total(tk.metrics(), "traces_span_metrics_calls_total") == len(first)
        tk.proc.kill()
        tk.proc.wait()
    with peers.Tracekeep(workdir, ONE_PERCENT, decision_wait="10m") as tk:
        text = tk.metrics()
        assert total(text, "tracekeep_journal_batches_replayed_total") > 0, "nothing replayed"
        assert total(text, "tracekeep_sampler_spans_pending") == len(first)
        assert total(text, "traces_span_metrics_calls_total") == 0
        second = send(tk, 200, seed=4)["spans"]
        calls, _, _, _ = expected_series(second, dimensions=False)
        assert samples(tk.metrics(), "traces_span_metrics_calls_total") == \
            {k: float(v) for k, v in calls.items()}


def test_jaeger_monitor_tab_shows_tracekeeps_figures_through_prometheus(tmp_path):
    """A real Prometheus scrapes tracekeep; a real Jaeger v2, whose Monitor tab reads that
    Prometheus, answers /api/metrics/{calls,errors,latencies} with tracekeep's figures, for
    traces tracekeep kept none of."""
    nothing = "    - {name: nothing, type: probabilistic, probabilistic: {sampling_percentage: 0}}"
    # [service, name, kind, status, duration_ns, count]
    plan = [["shop-api", "GET /fast", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET", 5_000_000, 100],
            ["shop-api", "POST /fail", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR", 150_000_000, 100],
            ["shop-api", "GET /mixed", "SPAN_KIND_SERVER", "STATUS_CODE_OK", 50_000_000, 75],
            ["shop-api", "GET /mixed", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR", 50_000_000, 25],
            ["shop-api", "db", "SPAN_KIND_CLIENT", "STATUS_CODE_UNSET", 1_000_000, 100]]
    # One span of each label set first: rate() counts increases after a series' first sample.
    warm_up = [row[:5] + [1] for row in plan]

    def send_plan(tk, p):
        r = subprocess.run([sys.executable, CLIENT, "--endpoint", f"http://{tk.grpc}", "--plan",
                            json.dumps(p)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-4000:]

    with peers.Tracekeep(str(tmp_path / "tk"), nothing) as tk, \
            peers.Prometheus(str(tmp_path / "prom"), [tk.telemetry]) as prom:
        def in_prometheus(n):
            result = prom.query("sum(traces_span_metrics_calls_total)")
            return result and float(result[0]["value"][1]) == n
        send_plan(tk, warm_up)
        peers.wait_for(lambda: in_prometheus(len(plan)), 60, "the warm-up in Prometheus")
        send_plan(tk, plan)
        peers.wait_for(lambda: in_prometheus(len(plan) + sum(r[5] for r in plan)), 60,
                       "every span in Prometheus")

        with peers.JaegerQuery(str(tmp_path / "jaeger"), tk.jaeger_storage,
                               prometheus=prom.addr) as jaeger:
            def monitor(what, **extra):
                status, body = jaeger.get(f"/api/metrics/{what}", service="shop-api",
                                          endTs=int(time.time() * 1000), lookback=120000,
                                          step=10000, ratePer=60000, spanKind="server",
                                          groupByOperation="true", **extra)
                assert status == 200, body
                out = {}
                for m in body["metrics"]:
                    labels = {label["name"]: label["value"] for label in m["labels"]}
                    assert labels["service_name"] == "shop-api", labels
                    points = [p["gaugeValue"]["doubleValue"] for p in m["metricPoints"]
                              if "doubleValue" in p.get("gaugeValue", {})]
                    if points:
                        out[labels["operation"]] = points[-1]
                return out

            calls = monitor("calls")
            assert set(calls) == {"GET /fast", "POST /fail", "GET /mixed"}, calls  # no CLIENT
            assert calls["GET /fast"] > 0 and calls["GET /fast"] == calls["POST /fail"], calls
            assert abs(calls["GET /mixed"] / calls["GET /fast"] - 1) < 0.05, calls
            errors = monitor("errors")
            assert errors["POST /fail"] == 1, errors
            # 25 of 100; Prometheus extrapolates each series' rate a little differently.
            assert abs(errors["GET /mixed"] - 0.25) < 0.02, errors
            assert errors.get("GET /fast", 0) == 0, errors
            # Every span of an operation in one bucket: histogram_quantile interpolates exactly.
            latencies = monitor("latencies", quantile=0.95)
            assert latencies == pytest.approx({"GET /fast": 4 + 0.95 * 2,      # (4, 6] ms
                                               "GET /mixed": 10 + 0.95 * 40,   # (10, 50] ms
                                               "POST /fail": 100 + 0.95 * 100})  # (100, 200] ms
            # ... while none of these traces was kept.
            status, services = jaeger.get("/api/services")
            assert status == 200 and "shop-api" not in (services.get("data") or []), services


# Labels the Collector's Prometheus exporter adds from the resource and the scope: not span
# metrics labels (Prometheus sets job and instance of the scrape target itself).
EXPORTER_LABELS = {"job", "instance", "otel_scope_name", "otel_scope_version",
                   "otel_scope_schema_url"}


def without_exporter_labels(series):
    out = collections.defaultdict(float)
    for labels, value in series.items():
        out[frozenset((k, v) for k, v in labels if k not in EXPORTER_LABELS)] += value
    return dict(out)


def test_series_equal_those_of_the_opentelemetry_spanmetrics_connector(tmp_path):
    """The same spans sent to tracekeep and to the OpenTelemetry Collector's spanmetrics connector
    (inside the real Jaeger v2 binary) with the same dimensions, exported by its prometheus
    exporter: same metric names, label names and values, buckets and values."""
    jaeger_bin = peers.require(peers.JAEGER_BIN, "jaeger (scripts/setup.sh --peers)")
    otlp, metrics = peers.free_port(), peers.free_port()
    config = f"""service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
  telemetry:
    metrics: {{level: none}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{otlp}"}}
connectors:
  spanmetrics:
    metrics_flush_interval: 100ms
    dimensions:
      - {{name: http.route}}
      - {{name: deployment.environment, default: none}}
exporters:
  prometheus:
    endpoint: "127.0.0.1:{metrics}"
"""
    (tmp_path / "collector.yaml").write_text(config)
    spans = 3000
    collector = peers.Process([jaeger_bin, "--config", str(tmp_path / "collector.yaml")],
                              str(tmp_path / "collector.log"), cwd=str(tmp_path),
                              env=dict(os.environ, OTEL_TRACES_EXPORTER="none"))
    with collector, peers.Tracekeep(str(tmp_path / "tk"), ONE_PERCENT, extra=DIMENSIONS) as tk:
        def ready():
            assert collector.alive(), collector.log()[-4000:]
            return "Everything is ready" in collector.log()
        peers.wait_for(ready, 60, "the Collector")
        r = subprocess.run([sys.executable, CLIENT, "--endpoint", f"http://127.0.0.1:{otlp}",
                            "--spans", str(spans), "--seed", "11"], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-4000:]
        send(tk, spans, seed=11)  # the same spans (same seed), other ids

        def collector_text():
            text = peers.http_get(f"http://127.0.0.1:{metrics}/metrics")[1].decode()
            return text if total(text, "traces_span_metrics_calls_total") == spans else None
        theirs = peers.wait_for(collector_text, 60, "the connector's metrics")
        ours = tk.metrics()
        for name in ("traces_span_metrics_calls_total",
                     "traces_span_metrics_duration_milliseconds_bucket",
                     "traces_span_metrics_duration_milliseconds_count"):
            expected = without_exporter_labels(samples(theirs, name))
            assert expected and samples(ours, name) == expected, name
        expected = without_exporter_labels(
            samples(theirs, "traces_span_metrics_duration_milliseconds_sum"))
        got = samples(ours, "traces_span_metrics_duration_milliseconds_sum")
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-9), sorted(key)


def test_promtool_finds_only_the_connectors_millisecond_unit(tmp_path):
    """promtool's lint of the exposition with span metrics in it: the one finding is the unit of
    the duration histogram, which is the connector's name (unit: s names it ..._seconds)."""
    promtool = peers.require(peers.PROMTOOL_BIN, "promtool (Debian package prometheus)")
    with peers.Tracekeep(str(tmp_path / "tk"), ONE_PERCENT, extra=DIMENSIONS) as tk:
        send(tk, 500)
        r = subprocess.run([promtool, "check", "metrics"], input=tk.metrics(),
                           capture_output=True, text=True, timeout=60)
        findings = [line.strip() for line in (r.stdout + r.stderr).splitlines() if line.strip()]
        assert findings == ['traces_span_metrics_duration_milliseconds use base unit "seconds" '
                            'instead of "milliseconds"'], findings
    with peers.Tracekeep(str(tmp_path / "tk2"), ONE_PERCENT,
                         extra="span_metrics: {histogram: {unit: s}}\n") as tk:
        send(tk, 100)
        r = subprocess.run([promtool, "check", "metrics"], input=tk.metrics(),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
