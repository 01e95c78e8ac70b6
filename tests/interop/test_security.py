"""Security end to end: the real tracekeep, the OpenTelemetry Python SDK sending with bearer
tokens (as OTel's bearertokenauth client extension does), tracekeepctl with viewer and operator
tokens, and a look at every file tracekeep wrote.

- who may send: a known token is accepted and names the client in the metrics; no token or an
  unknown one is refused (UNAUTHENTICATED / 401); a client over its own limit gets 429 +
  Retry-After while another client passes; a rotated token works after SIGHUP on the same
  connection.
- who may operate: a viewer may read but not change policies (tracekeepctl names the role it
  needs); an operator may; both calls are in the audit log, the accepted one with its diff.
- what never touches disk: after spans with secrets were stored and queued for export, no file
  under the data directory holds the raw values, while a non-secret marker sent alongside is
  found (so the search does see what was written).
- the hardened example config passes --check-config.
"""

import hashlib
import json
import os
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import peers

HERE = os.path.dirname(os.path.abspath(__file__))
ALWAYS = "    - {name: all, type: always_sample}"

SHOP_TOKEN = "shop-api-token-4c1f0e9b7a"
BATCH_TOKEN = "batch-job-token-9d2e6a1c55"
ROTATED_TOKEN = "shop-api-rotated-7b3d2f8e0c"
ALICE_TOKEN = "alice-operator-token-51e0a7"
BOB_TOKEN = "bob-viewer-token-0f6c93d2e1"
SALT = "pepper-for-tests-93a1"

# Values that must never reach a file: each attribute is redacted by a different rule.
SECRETS = {
    "user.email": "ann.secret@example.com",                       # hash by key
    "http.request.header.authorization": "Basic c2VjcmV0LXB3ZA==",  # delete by pattern
    "note": "charged card 4111111111111111 today",                # blocked value (card)
    "order.id": "order-secret-7731",                              # order id: hashed
}
EVENT_SECRET = "bob.secret@example.org"      # blocked value (e-mail) in an event
RESOURCE_SECRET = "ops.secret@example.net"   # blocked value in the resource
MARKER = "plain-visible-marker-5e1d"         # not secret: must be found on disk


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def tk(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("sec"))
    otlp_tokens = write(os.path.join(d, "otlp-tokens"),
                        f"# client token\nshop-api {SHOP_TOKEN}\nbatch-job {BATCH_TOKEN}\n")
    admin_tokens = write(os.path.join(d, "admin-tokens"),
                         f"alice operator {ALICE_TOKEN}\nbob viewer {BOB_TOKEN}\n")
    salt = write(os.path.join(d, "salt"), SALT + "\n")
    write(os.path.join(d, "alice.token"), ALICE_TOKEN + "\n")
    write(os.path.join(d, "bob.token"), BOB_TOKEN + "\n")
    redaction = f"""security: {{token_reload_interval: 1h}}
redaction:
  hash_salt_file: {salt}
  actions:
    - {{key: user.email, action: hash}}
    - {{pattern: "^http\\\\.request\\\\.header\\\\.", action: delete}}
    - {{key: order.id, action: hash}}
  blocked_values:
    - "\\\\b\\\\d(?:[ -]?\\\\d){{12,18}}\\\\b"
    - "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\\\.[A-Za-z]{{2,}}"
"""
    # Forwarding to a port where nothing listens keeps kept spans in the durable export queue.
    with peers.Tracekeep(
            os.path.join(d, "tk"), ALWAYS, decision_wait="200ms",
            forward_to=f"127.0.0.1:{peers.free_port()}", auth_token_file=otlp_tokens,
            otlp_extra="    client_limits:\n      clients:\n"
                       "        batch-job: {spans_per_second: 5}\n",
            admin_extra=f"tokens_file: {admin_tokens}", extra=redaction,
            ctl_token_file=os.path.join(d, "bob.token")) as t:
        t.dir = d
        t.otlp_tokens = otlp_tokens
        t.shop_token = SHOP_TOKEN  # changed by the rotation test
        yield t


def sdk_send(exporter, span_name):
    """Sends one span with the secret attributes through the Python SDK; returns its trace id."""
    provider = TracerProvider(resource=Resource.create(
        {"service.name": "shop-api", "deployment.owner": RESOURCE_SECRET}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("security-test").start_as_current_span(span_name) as span:
        for key, value in SECRETS.items():
            span.set_attribute(key, value)
        span.set_attribute("marker", MARKER)
        span.add_event("contact", {"contact": EVENT_SECRET})
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def export_request(spans):
    """An ExportTraceServiceRequest of `spans` spans of one trace."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(spans):
        s = ss.spans.add()
        s.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
        s.span_id = (i + 1).to_bytes(8, "big")
        s.name = f"bulk {i}"
    return req


def post(tk, authorization, spans=1):
    headers = {"Content-Type": "application/x-protobuf"}
    if authorization:
        headers["Authorization"] = authorization
    req = urllib.request.Request(f"http://{tk.http}/v1/traces",
                                 data=export_request(spans).SerializeToString(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def grpc_export(stub, token, spans=1):
    metadata = [("authorization", f"Bearer {token}")] if token else []
    try:
        stub.Export(export_request(spans), metadata=metadata, timeout=10)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def test_known_tokens_are_accepted_and_secrets_are_redacted(tk):
    grpc_id = sdk_send(GrpcExporter(endpoint=tk.grpc, insecure=True,
                                    headers={"authorization": f"Bearer {SHOP_TOKEN}"}), "grpc")
    http_id = sdk_send(HttpExporter(endpoint=f"http://{tk.http}/v1/traces",
                                    headers={"Authorization": f"Bearer {SHOP_TOKEN}"}), "http")
    for trace_id in (grpc_id, http_id):
        stored = json.dumps(tk.wait_trace(trace_id, 1))
        for raw in list(SECRETS.values()) + [EVENT_SECRET, RESOURCE_SECRET, "4111111111111111"]:
            assert raw not in stored, f"{raw!r} stored in trace {trace_id}"
        assert MARKER in stored
        # The order id is hashed with the salt, the same way in every span.
        assert hashlib.sha256((SALT + SECRETS["order.id"]).encode()).hexdigest() in stored
        assert "charged card **** today" in stored
    assert tk.metric("tracekeep_receiver_client_spans_total", 'client="shop-api"') >= 2
    assert tk.metric("tracekeep_redaction_spans_changed_total") >= 2


def test_missing_or_unknown_tokens_are_refused_and_counted(tk):
    assert post(tk, "")[0] == 401
    assert post(tk, "Bearer not-a-token-of-the-file")[0] == 401
    assert post(tk, "Basic dXNlcjpwdw==")[0] == 401
    with grpc.insecure_channel(tk.grpc) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        assert grpc_export(stub, "") == grpc.StatusCode.UNAUTHENTICATED
    metrics = tk.metrics()
    assert tk.metric("tracekeep_receiver_auth_failures_total",
                     'listener="grpc+http",reason="missing"') >= 2
    assert tk.metric("tracekeep_receiver_auth_failures_total",
                     'listener="grpc+http",reason="unknown"') >= 1
    assert tk.metric("tracekeep_receiver_auth_failures_total",
                     'listener="grpc+http",reason="malformed"') >= 1
    assert tk.metric("tracekeep_receiver_requests_refused_total",
                     'reason="unauthenticated",transport="http"') >= 3
    for token in (SHOP_TOKEN, BATCH_TOKEN, ALICE_TOKEN, BOB_TOKEN, "not-a-token-of-the-file"):
        assert token not in metrics
        assert token not in tk.log()


def test_a_noisy_client_is_limited_while_others_pass(tk):
    assert post(tk, f"Bearer {BATCH_TOKEN}", spans=6)[0] == 200  # empties its 5 spans/s bucket
    status, headers = post(tk, f"Bearer {BATCH_TOKEN}")
    assert status == 429
    assert "Retry-After" in headers
    assert post(tk, f"Bearer {SHOP_TOKEN}", spans=20)[0] == 200
    assert tk.metric("tracekeep_receiver_client_rate_limited_requests_total",
                     'client="batch-job"') >= 1
    assert tk.metric("tracekeep_receiver_spans_refused_total",
                     'reason="rate_limited",transport="http"') >= 1


def test_viewer_reads_operator_changes_and_both_are_audited(tk):
    assert tk.ctl("status").returncode == 0  # bob, viewer
    policies = write(os.path.join(tk.dir, "policies.yaml"),
                     "- {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n")
    refused = tk.ctl("policies", "set", policies)
    assert refused.returncode == 2, refused.stderr
    assert "SetPolicies needs the operator role" in refused.stderr
    assert "\"bob\" has the viewer role" in refused.stderr
    accepted = tk.ctl("policies", "set", policies,
                      token_file=os.path.join(tk.dir, "alice.token"))
    assert accepted.returncode == 0, accepted.stderr

    with open(os.path.join(tk.dir, "tk", "data", "audit.log")) as f:
        events = [json.loads(line) for line in f]
    assert [(e["method"], e["caller"], e["role"], e["result"]) for e in events][-2:] == [
        ("SetPolicies", "bob", "viewer", "PERMISSION_DENIED"),
        ("SetPolicies", "alice", "operator", "OK")]
    assert events[-1]["peer"].startswith("ipv4:127.0.0.1:")
    assert "+- name: errors" in events[-1]["policy_diff"]
    assert "-- name: all" in events[-1]["policy_diff"]
    assert tk.metric("tracekeep_admin_audit_events_total",
                     'method="SetPolicies",result="ok"') == 1
    assert tk.metric("tracekeep_admin_refused_calls_total", 'reason="permission_denied"') >= 1


def test_rotated_token_works_after_sighup_on_the_same_connection(tk):
    with grpc.insecure_channel(tk.grpc) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        assert grpc_export(stub, SHOP_TOKEN) == grpc.StatusCode.OK
        write(tk.otlp_tokens, f"shop-api {ROTATED_TOKEN}\nbatch-job {BATCH_TOKEN}\n")
        # token_reload_interval is 1h: nothing changes before SIGHUP.
        assert grpc_export(stub, ROTATED_TOKEN) == grpc.StatusCode.UNAUTHENTICATED
        tk.proc.send_signal(signal.SIGHUP)
        peers.wait_for(lambda: grpc_export(stub, ROTATED_TOKEN) == grpc.StatusCode.OK, 10,
                       "the rotated token to be accepted after SIGHUP")
        assert grpc_export(stub, SHOP_TOKEN) == grpc.StatusCode.UNAUTHENTICATED
        tk.shop_token = ROTATED_TOKEN
        assert channel._channel.check_connectivity_state(False) == 2  # still READY
    assert tk.alive()
    assert tk.metric("tracekeep_token_file_reloads_total", 'kind="otlp"') >= 1


def test_a_changed_token_file_is_picked_up_without_a_signal(tmp_path):
    """security.token_reload_interval: the file is re-read when it changes, no SIGHUP needed."""
    tokens = write(str(tmp_path / "otlp-tokens"), f"shop-api {SHOP_TOKEN}\n")
    with peers.Tracekeep(str(tmp_path / "tk"), ALWAYS, auth_token_file=tokens,
                         extra="security: {token_reload_interval: 100ms}\n") as t:
        assert post(t, f"Bearer {SHOP_TOKEN}")[0] == 200
        assert post(t, f"Bearer {ROTATED_TOKEN}")[0] == 401
        write(tokens, f"shop-api {ROTATED_TOKEN}\n")
        peers.wait_for(lambda: post(t, f"Bearer {ROTATED_TOKEN}")[0] == 200, 10,
                       "the changed token file to be reloaded")
        assert post(t, f"Bearer {SHOP_TOKEN}")[0] == 401
        # A broken file keeps the tokens in force, and the failure is counted.
        write(tokens, "shop-api\n")
        peers.wait_for(lambda: t.metric("tracekeep_token_file_reload_failures_total",
                                        'kind="otlp"') >= 1, 10, "the failed reload to be counted")
        assert post(t, f"Bearer {ROTATED_TOKEN}")[0] == 200
        assert ROTATED_TOKEN not in t.log()


def sdk_send_as(exporter, resource, span_name, span_attributes=None):
    """Sends one span with `resource` through the Python SDK; returns its trace id."""
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("security-test").start_as_current_span(span_name) as span:
        for key, value in (span_attributes or {}).items():
            span.set_attribute(key, value)
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def resource_values(stored, key):
    """Every string value of resource attribute `key` in a stored trace (OTLP JSON)."""
    return [kv["value"].get("stringValue") for rs in stored["resourceSpans"]
            for kv in rs.get("resource", {}).get("attributes", []) if kv["key"] == key]


def test_policies_see_the_authenticated_client_not_what_it_claims(tmp_path):
    """auth.client_attribute: the receivers put the client's name from its token on the
    resource; a string_attribute policy on it keeps one client's traces only, even when another
    client claims that name in its own resource and span attributes."""
    tokens = write(str(tmp_path / "otlp-tokens"),
                   f"shop-api {SHOP_TOKEN}\nbatch-job {BATCH_TOKEN}\n")
    policy = ("    - {name: shop-only, type: string_attribute,\n"
              "       string_attribute: {key: tracekeep.client, values: [shop-api]}}")
    with peers.Tracekeep(str(tmp_path / "tk"), policy, decision_wait="200ms",
                         auth_token_file=tokens, client_attribute="tracekeep.client") as t:
        def grpc_exporter(token):
            return GrpcExporter(endpoint=t.grpc, insecure=True,
                                headers={"authorization": f"Bearer {token}"})

        def http_exporter(token):
            return HttpExporter(endpoint=f"http://{t.http}/v1/traces",
                                headers={"Authorization": f"Bearer {token}"})

        shop = [sdk_send_as(grpc_exporter(SHOP_TOKEN), {"service.name": "shop-api"}, "grpc"),
                sdk_send_as(http_exporter(SHOP_TOKEN), {"service.name": "shop-api"}, "http")]
        claims = {"tracekeep.client": "shop-api"}
        batch = [sdk_send_as(grpc_exporter(BATCH_TOKEN), {"service.name": "batch-job", **claims},
                             "grpc", claims),
                 sdk_send_as(http_exporter(BATCH_TOKEN), {"service.name": "batch-job", **claims},
                             "http", claims)]
        for trace_id in shop:
            assert resource_values(t.wait_trace(trace_id, 1), "tracekeep.client") == ["shop-api"]
        peers.wait_for(lambda: t.metric("tracekeep_sampler_traces_not_sampled_total") >= 2, 30,
                       "batch-job's two traces to be decided")
        for trace_id in batch:
            assert t.trace_get(trace_id) is None, f"batch-job's trace {trace_id} was kept"
        assert t.metric("tracekeep_sampler_traces_sampled_total", 'policy="shop-only"') == 2
        assert t.metric("tracekeep_sampler_traces_not_sampled_total") == 2


def _proc_counts(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        threads = int(next(line for line in f if line.startswith("Threads:")).split()[1])
    return fds, threads


def test_ten_thousand_idle_connections_cost_no_fds_or_threads(tk):
    """10,000 idle OTLP/HTTP connections: the daemon's file descriptors and threads stay
    bounded (its HTTP threads and accept queue; the rest wait in the kernel's backlog), and it
    serves again as soon as they close."""
    import socket
    host, port = tk.http.rsplit(":", 1)
    fds_before, threads_before = _proc_counts(tk.proc.pid)
    idle = []
    try:
        for _ in range(10000):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, int(port)))
            idle.append(s)
        # Sample the daemon while the connections are open (bounded observation window).
        samples = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            samples.append(_proc_counts(tk.proc.pid))
        fds, threads = max(f for f, _ in samples), max(t for _, t in samples)
        assert fds - fds_before <= 64, f"{fds - fds_before} more fds with 10k idle connections"
        assert threads - threads_before <= 2, f"{threads - threads_before} more threads"
    finally:
        # Reset, not FIN: connections still half-open on the daemon's side (its accept queue
        # was full) are dropped at once instead of waiting for their SYN-ACK retries.
        for s in idle:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    # A client whose connection attempt met the full queue retries with backoff (1 s, 2 s, 4 s,
    # ...): the bound allows for that on a loaded machine.
    peers.wait_for(lambda: post(tk, f"Bearer {tk.shop_token}")[0] == 200, 90,
                   "an OTLP/HTTP request to succeed after the idle connections closed")


def test_hostile_grpc_clients_hold_no_threads_and_are_cut_off(tmp_path):
    """OTLP/gRPC bounds (short ones for the test): 1,000 TCP connections that never speak, and
    40 calls (10 connections x max_concurrent_streams) that open their stream and never send
    their message. Meanwhile another client is served, and the daemon gains no thread per
    connection or call (gRPC's pool may add a few when its queue backs up on a loaded machine);
    the silent connections are closed after handshake_timeout (their file descriptors come back),
    the silent calls end at max_connection_age + grace."""
    import socket
    import threading
    bounds = ("max_concurrent_streams: 4, handshake_timeout: 2s, keepalive: {server_parameters: "
              "{max_connection_idle: 30s, max_connection_age: 3s, max_connection_age_grace: 1s}}")
    with peers.Tracekeep(str(tmp_path / "tk"), ALWAYS, grpc_extra=bounds) as t:
        host, port = t.grpc.rsplit(":", 1)
        with grpc.insecure_channel(t.grpc) as channel:  # a warm, honest client
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            assert grpc_export(stub, "") == grpc.StatusCode.OK
            fds_before, threads_before = _proc_counts(t.proc.pid)
            silent = []
            try:
                for _ in range(1000):
                    s = socket.socket()
                    s.setblocking(False)
                    s.connect_ex((host, int(port)))
                    silent.append(s)
                # The daemon accepts them at its own pace (slowly on a loaded machine): wait until
                # it holds a good part of them, and watch its threads meanwhile.
                peak_threads = 0

                def holds_them():
                    nonlocal peak_threads
                    fds, threads = _proc_counts(t.proc.pid)
                    peak_threads = max(peak_threads, threads)
                    return fds > fds_before + 100

                peers.wait_for(holds_them, 10, "the daemon to accept the silent connections")
                # While they are open, the honest client is served.
                for _ in range(5):
                    assert grpc_export(stub, "") == grpc.StatusCode.OK
                peak_threads = max(peak_threads, _proc_counts(t.proc.pid)[1])
                assert peak_threads - threads_before <= 8, \
                    f"{peak_threads - threads_before} more threads with 1,000 silent connections"
                # handshake_timeout closes them: the daemon's descriptors come back.
                peers.wait_for(lambda: _proc_counts(t.proc.pid)[0] <= fds_before + 8, 30,
                               "the silent connections' descriptors to be released")
            finally:
                for s in silent:
                    s.close()

            # Calls that open their stream and never send their message.
            stop = threading.Event()

            def never_sends():
                stop.wait()
                return
                yield  # a generator that yields nothing

            # Distinct channel arguments: one connection each, not a shared subchannel.
            hung_channels = [grpc.insecure_channel(t.grpc, options=[("test.channel", i)])
                             for i in range(10)]
            try:
                started = time.monotonic()
                hung = []
                for channel_ in hung_channels:
                    export = channel_.stream_unary(
                        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                        request_serializer=(
                            trace_service_pb2.ExportTraceServiceRequest.SerializeToString),
                        response_deserializer=(
                            trace_service_pb2.ExportTraceServiceResponse.FromString))
                    hung += [export.future(never_sends()) for _ in range(4)]
                for _ in range(5):
                    assert grpc_export(stub, "") == grpc.StatusCode.OK
                threads = _proc_counts(t.proc.pid)[1]
                assert threads - threads_before <= 8, \
                    f"{threads - threads_before} more threads with 40 silent calls"
                # max_connection_age (3 s) + grace (1 s) ends them; allow for a loaded machine.
                for call in hung:
                    assert call.exception(timeout=30) is not None
                    assert call.code() in (grpc.StatusCode.UNAVAILABLE,
                                           grpc.StatusCode.CANCELLED,
                                           grpc.StatusCode.INTERNAL), call.code()
                assert time.monotonic() - started >= 3.0
            finally:
                stop.set()
                for channel_ in hung_channels:
                    channel_.close()
            assert grpc_export(stub, "") == grpc.StatusCode.OK
        assert t.alive()


def test_no_file_under_the_data_directory_holds_a_raw_secret(tk):
    # Runs last in this module. kill -9: the files stay as they were while it ran (journal and
    # RocksDB write-ahead log included), nothing is cleaned up by a graceful stop first.
    tk.proc.kill()
    tk.proc.wait(timeout=30)
    data = os.path.join(tk.dir, "tk", "data")
    found_marker, files = False, 0
    for root, _, names in os.walk(data):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                content = f.read()
            files += 1
            for raw in list(SECRETS.values()) + [EVENT_SECRET, RESOURCE_SECRET,
                                                 "4111111111111111", "c2VjcmV0LXB3ZA"]:
                assert raw.encode() not in content, f"{raw!r} in {os.path.join(root, name)}"
            found_marker |= MARKER.encode() in content
    assert files > 3
    assert found_marker, "the marker sent with the secrets was not found: the search sees nothing"


def test_hardened_example_config_is_valid(tmp_path):
    etc = str(tmp_path)
    os.makedirs(os.path.join(etc, "tls"))
    for name in ("server", "operators-ca", "jaeger-ca"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        os.path.join(etc, "tls", name + ".key"), "-out",
                        os.path.join(etc, "tls", name + ".pem"), "-days", "1", "-subj",
                        "/CN=localhost"], check=True, capture_output=True)
    write(os.path.join(etc, "otlp-tokens"), f"shop-api {SHOP_TOKEN}\n")
    write(os.path.join(etc, "admin-tokens"), f"alice operator {ALICE_TOKEN}\n")
    write(os.path.join(etc, "redaction-salt"), SALT + "\n")
    with open(os.path.join(os.environ["TRACEKEEP_SOURCE_DIR"], "deploy",
                           "tracekeep.hardened.yaml")) as f:
        config = f.read().replace("/etc/tracekeep", etc)
    path = write(os.path.join(etc, "tracekeep.yaml"), config)
    r = subprocess.run([peers.TRACEKEEP_BIN, "--check-config", path], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    # The order id cannot be redacted away: the same file with a rule deleting it is refused.
    bad = write(os.path.join(etc, "bad.yaml"), config.replace(
        "    - {key: enduser.id, action: hash}", "    - {key: order.id, action: delete}"))
    r = subprocess.run([peers.TRACEKEEP_BIN, "--check-config", bad], capture_output=True,
                       text=True)
    assert r.returncode == 1
    assert "would delete the order id attribute" in r.stderr
