"""Real, independently written OTLP clients -> tracekeep, over every transport each supports.

Each client is pointed at tracekeep by its endpoint alone and sends the canonical trace
(otlp.py); with an always_sample policy the test reads every trace back through
`tracekeepctl trace get --json` and compares it field by field with what was asked of the client.
"""

import json
import os
import subprocess
import sys

import pytest

import otlp
import peers

HERE = os.path.dirname(os.path.abspath(__file__))
ALWAYS = "    - {name: all, type: always_sample}"


@pytest.fixture(scope="module")
def tracekeep(tmp_path_factory):
    with peers.Tracekeep(str(tmp_path_factory.mktemp("tk")), ALWAYS, decision_wait="200ms") as tk:
        yield tk


def run_client(argv, env=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, f"{argv} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def check_sent(tracekeep, ids, service):
    for trace_id in ids["error"]:
        otlp.check_canonical(tracekeep.wait_trace(trace_id, 2), service, error=True, policy="all")
    for trace_id in ids["healthy"]:
        otlp.check_canonical(tracekeep.wait_trace(trace_id, 2), service, error=False, policy="all")


TRANSPORTS = [(p, c) for p in ("grpc", "http/protobuf", "http/json") for c in ("none", "gzip")]


def endpoint(tracekeep, protocol):
    return f"http://{tracekeep.grpc if protocol == 'grpc' else tracekeep.http}"


@pytest.mark.parametrize("protocol,compression", TRANSPORTS)
def test_python_sdk(tracekeep, protocol, compression):
    service = f"interop-python-{protocol.replace('/', '-')}-{compression}"
    ids = run_client([sys.executable, os.path.join(HERE, "clients", "python_client.py"),
                      "--protocol", protocol, "--endpoint", endpoint(tracekeep, protocol),
                      "--compression", compression, "--errors", "2", "--healthy", "1",
                      "--service", service])
    check_sent(tracekeep, ids, service)


@pytest.mark.parametrize("protocol,compression", TRANSPORTS)
def test_javascript_sdk(tracekeep, protocol, compression):
    node = peers.require(peers.NODE_BIN, "node (Debian package nodejs)")
    assert os.path.isdir(os.path.join(peers.JS_DIR, "node_modules", "@opentelemetry")), \
        "the OpenTelemetry JS SDK is not installed: run scripts/setup.sh --peers"
    service = f"interop-js-{protocol.replace('/', '-')}-{compression}"
    ids = run_client([node, os.path.join(peers.JS_DIR, "client.js"), "--protocol", protocol,
                      "--endpoint", endpoint(tracekeep, protocol), "--compression", compression,
                      "--errors", "2", "--healthy", "1", "--service", service])
    check_sent(tracekeep, ids, service)


@pytest.mark.parametrize("protocol,compression", TRANSPORTS)
def test_cpp_sdk(tracekeep, protocol, compression):
    client = peers.require(peers.CPP_CLIENT_BIN, "interop_cpp_client (built by ninja)")
    service = f"interop-cpp-{protocol.replace('/', '-')}-{compression}"
    ids = run_client([client, "--protocol", protocol, "--endpoint", endpoint(tracekeep, protocol),
                      "--compression", compression, "--errors", "2", "--healthy", "1",
                      "--service", service])
    check_sent(tracekeep, ids, service)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_telemetrygen_high_rate(tracekeep, transport):
    """telemetrygen (the OpenTelemetry load generator) at a high rate: every span is accepted
    and stored, none refused."""
    telemetrygen = peers.require(peers.TELEMETRYGEN_BIN, "telemetrygen")
    label = f'transport="{transport}"'
    accepted_before = tracekeep.metric("tracekeep_receiver_spans_accepted_total", label)
    stored_before = tracekeep.metric("tracekeep_storage_spans_stored_total")
    # 10,000 traces of 2 spans, unthrottled. telemetrygen's SDK batch processor silently drops
    # what does not fit its queue (2048 spans by default), so the queue is made large enough
    # through the SDK's standard variable: then every span it generates is sent.
    workers, traces = 4, 2500
    argv = [telemetrygen, "traces", "--otlp-insecure", "--workers", str(workers),
            "--traces", str(traces), "--rate", "0", "--child-spans", "1",
            "--service", f"telemetrygen-{transport}"]
    if transport == "grpc":
        argv += ["--otlp-endpoint", tracekeep.grpc]
    else:
        argv += ["--otlp-http", "--otlp-endpoint", tracekeep.http]
    env = dict(os.environ, OTEL_BSP_MAX_QUEUE_SIZE="100000")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, f"telemetrygen exited {r.returncode}:\n{r.stderr[-4000:]}"
    want = workers * traces * 2
    peers.wait_for(lambda: tracekeep.metric("tracekeep_receiver_spans_accepted_total", label)
                   - accepted_before == want, 60,
                   f"{want} spans accepted over {transport} "
                   f"(have {tracekeep.metric('tracekeep_receiver_spans_accepted_total', label)})")
    peers.wait_for(lambda: tracekeep.metric("tracekeep_storage_spans_stored_total")
                   - stored_before >= want, 60, f"{want} telemetrygen spans stored")
    assert tracekeep.metric("tracekeep_receiver_spans_refused_total",
                            f'{label},reason="overloaded"') == 0


def make_cert(directory, name):
    """A self-signed certificate for 127.0.0.1 (it is its own CA); returns (cert, key) paths."""
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_python_sdk_over_mutual_tls(tmp_path):
    """OTLP/HTTP over mutual TLS with the Python SDK: traces sent with the trusted client
    certificate arrive intact; traces sent without a client certificate never do."""
    server_cert, server_key = make_cert(str(tmp_path), "server")
    client_cert, client_key = make_cert(str(tmp_path), "client")
    tls = f"{{cert_file: {server_cert}, key_file: {server_key}, client_ca_file: {client_cert}}}"
    with peers.Tracekeep(str(tmp_path / "tk"), ALWAYS, decision_wait="200ms",
                         http_tls=tls) as tk:
        client = [sys.executable, os.path.join(HERE, "clients", "python_client.py"),
                  "--protocol", "http/protobuf", "--endpoint", f"https://{tk.http}",
                  "--ca", server_cert]
        # requests (under the SDK's exporter) lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override
        # the CA it is given: run the client without them.
        env = {k: v for k, v in os.environ.items()
               if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
        refused = run_client(client + ["--service", "no-client-cert"], env=env)
        ids = run_client(client + ["--client-cert", client_cert, "--client-key", client_key,
                                   "--service", "interop-python-mtls"], env=env)
        check_sent(tk, ids, "interop-python-mtls")
        for trace_id in refused["error"] + refused["healthy"]:
            assert tk.trace_get(trace_id) is None, f"{trace_id} arrived without a client cert"
