"""ottl_condition policies are the OpenTelemetry Collector's: every condition tracekeep accepts is
accepted by the Collector's tail_sampling processor too (the one in the real Jaeger v2 binary,
started on a config holding them: it refuses to start on a condition it cannot parse), and both
refuse the malformed ones. The verdicts of these conditions are tested in
tests/collector/sampling/ottl_test.cc."""

import os
import subprocess

import peers

SPAN = [
    'name == "GET /orders"',
    'name != "GET /orders"',
    'kind == SPAN_KIND_SERVER',
    'status.code == STATUS_CODE_ERROR',
    'status.code != STATUS_CODE_OK and status.code == 2',
    'attributes["http.status_code"] >= 400',
    'attributes["http.status_code"] == 403.0',
    'attributes["http.status_code"] == "403"',
    'attributes["load"] > 0.5 and attributes["load"] <= 0.75',
    'attributes["retried"] == true',
    'attributes["missing"] == nil',
    'attributes["missing"] != nil',
    'resource.attributes["service.name"] == "shop-api"',
    'resource.attributes["service.name"] < "t"',
    'end_time - start_time > Duration("1s")',
    'end_time - start_time >= Duration("1.5s")',
    'end_time_unix_nano - start_time_unix_nano == 1500000000',
    'start_time_unix_nano < end_time_unix_nano',
    'end_time > start_time',
    'end_time - start_time > 1000',
    'true',
    'not true',
    'attributes["tags"] == nil',
    'attributes["retried"] > false',
    'IsMatch(attributes["url.path"], "\\\\.\\\\./")',
    'IsMatch(attributes["db.statement"], "(?i)\'\\\\s*or\\\\s*\'1\'\\\\s*=\\\\s*\'1")',
    'IsMatch(name, "^GET ")',
    'not IsMatch(name, "^GET ")',
    'not (kind == SPAN_KIND_CLIENT or status.code == STATUS_CODE_OK)',
    'kind == SPAN_KIND_CLIENT or status.code == STATUS_CODE_ERROR and name == "x"',
    '(kind == SPAN_KIND_SERVER or status.code == STATUS_CODE_OK) and name == "GET /orders"',
    '-5 < attributes["load"]',
]
SPANEVENT = [
    'name == "exception"',
    'attributes["exception.type"] == "java.sql.SQLException"',
    'IsMatch(attributes["exception.type"], "SQL")',
    'span.attributes["http.status_code"] == 403',
    'span.name == "GET /orders" and name == "exception"',
    'span.status.code == STATUS_CODE_OK',
    'resource.attributes["service.name"] == "shop-api"',
]
# Malformed for both.
MALFORMED = [
    'name = "x"',
    '(name == "a"',
    'name == "open',
    'name @ 1',
]


def yaml_list(items, indent):
    # Single-quoted YAML scalars: a quote is written twice.
    return "\n".join(f"{' ' * indent}- '{c.replace(chr(39), chr(39) * 2)}'" for c in items)


def policy_yaml(span, spanevent, indent):
    pad = " " * indent
    out = (f"{pad}- name: conditions\n{pad}  type: ottl_condition\n{pad}  ottl_condition:\n"
           f"{pad}    error_mode: ignore\n")
    if span:
        out += f"{pad}    span:\n{yaml_list(span, indent + 6)}\n"
    if spanevent:
        out += f"{pad}    spanevent:\n{yaml_list(spanevent, indent + 6)}\n"
    return out


def jaeger_starts(tmp_path, span, spanevent):
    """(started, log) of the Jaeger v2 binary on a config whose tail_sampling holds the policy."""
    jaeger = peers.require(peers.JAEGER_BIN, "jaeger (scripts/setup.sh --peers)")
    config = f"""service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [nop]
  telemetry:
    metrics: {{level: none}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{peers.free_port()}"}}
processors:
  tail_sampling:
    policies:
{policy_yaml(span, spanevent, 6)}exporters:
  nop:
"""
    path = tmp_path / f"jaeger-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(config)
    env = dict(os.environ, OTEL_TRACES_EXPORTER="none")
    proc = peers.Process([jaeger, "--config", str(path)], str(path) + ".log", cwd=str(tmp_path),
                         env=env)
    try:
        def outcome():
            log = proc.log()
            if "Everything is ready" in log:
                return "started"
            if not proc.alive():
                return "exited"
            return None
        result = peers.wait_for(outcome, 60, "Jaeger to start or to refuse the config")
        return result == "started", proc.log()
    finally:
        proc.stop()


def tracekeep_accepts(tmp_path, span, spanevent):
    """(accepted, output) of tracekeep --check-config on sampler.policies holding the policy."""
    tracekeep = peers.require(peers.TRACEKEEP_BIN, "tracekeep (build it: scripts/build.sh)")
    path = tmp_path / f"tracekeep-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(f"sampler:\n  policies:\n{policy_yaml(span, spanevent, 4)}")
    r = subprocess.run([tracekeep, "--check-config", str(path)], capture_output=True, text=True,
                       timeout=60)
    return r.returncode == 0, r.stdout + r.stderr


def test_conditions_tracekeep_accepts_are_accepted_by_the_collector(tmp_path):
    ok, out = tracekeep_accepts(tmp_path, SPAN, SPANEVENT)
    assert ok, out
    started, log = jaeger_starts(tmp_path, SPAN, SPANEVENT)
    assert started, log[-4000:]


def test_malformed_conditions_are_refused_by_both(tmp_path):
    for condition in MALFORMED:
        ok, out = tracekeep_accepts(tmp_path, [condition], [])
        assert not ok and "ottl_condition.span[0]: column" in out, (condition, out)
        started, log = jaeger_starts(tmp_path, [condition], [])
        assert not started and "unable to parse OTTL condition" in log, (condition, log[-2000:])
