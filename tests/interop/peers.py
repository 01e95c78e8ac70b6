"""Starts and stops the real programs the interop tests talk to.

Every program runs as a child process with its own temporary directory, on ports chosen free
(tracekeep binds port 0 and reports what it bound; Jaeger and Prometheus get ports found free
just before they start). Every wait polls a condition with a deadline. Every process is stopped
(SIGTERM, then SIGKILL) when its `with` block ends, and its log is printed if a test failed.
"""

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

# Paths of the peers. ctest passes them in the environment (tests/interop/CMakeLists.txt).
TRACEKEEP_BIN = os.environ.get("TRACEKEEP_BIN", "")
TRACEKEEPCTL_BIN = os.environ.get("TRACEKEEPCTL_BIN", "")
CPP_CLIENT_BIN = os.environ.get("INTEROP_CPP_CLIENT", "")
GOBIN = os.environ.get("TRACEKEEP_GOBIN", "")
JAEGER_BIN = os.path.join(GOBIN, "jaeger")
TELEMETRYGEN_BIN = os.path.join(GOBIN, "telemetrygen")
JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
DEPS_DIR = os.environ.get("TRACEKEEP_DEPS_DIR", "")
KAFKA_LIBS = os.path.join(DEPS_DIR, "kafka", "libs") if DEPS_DIR else ""
JAVA_BIN = shutil.which("java") or "/usr/bin/java"
PROMETHEUS_BIN = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL_BIN = shutil.which("promtool") or "/usr/bin/promtool"
NODE_BIN = shutil.which("node") or shutil.which("nodejs") or ""


def require(path, what):
    """Fails the test loudly when a peer is missing: a missing peer is a broken setup."""
    if not path or not os.access(path, os.X_OK):
        raise AssertionError(
            f"{what} not found at {path!r}: run scripts/setup.sh --peers (see README, Interop tests)")
    return path


def wait_for(condition, timeout_s, what):
    """Polls `condition` until it returns a truthy value; raises naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # the peer may not be listening yet
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(0.05)


def free_port():
    """A TCP port free on 127.0.0.1 right now (for peers that cannot bind port 0 and report it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def http_get_json(url):
    status, body = http_get(url)
    return json.loads(body)


class Process:
    """A child process whose output goes to a log file; stopped on exit of its `with` block."""

    def __init__(self, argv, log_path, cwd=None, env=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd,
                                     env=env, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout_s=30):
        """SIGTERM, wait, SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    @contextlib.contextmanager
    def stopped_on_failure(self):
        """For a constructor's waits: a peer that never became ready is stopped (its `with`
        block, which would stop it, is never entered) and its log printed."""
        try:
            yield
        except BaseException:
            self.stop()
            print(f"--- log of {os.path.basename(self.argv[0])} ---\n{self.log()[-8000:]}")
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        if exc[0] is not None:
            print(f"--- log of {os.path.basename(self.argv[0])} ---\n{self.log()[-8000:]}")


class Tracekeep(Process):
    """The real daemon, with a config on port 0 for every listener and the given policies."""

    def __init__(self, workdir, policies, forward_to="", decision_wait="300ms", exporter_extra="",
                 http_tls="", jaeger_storage_extra="", retention="",
                 jaeger_storage_endpoint="127.0.0.1:0", kafka="", auth_token_file="",
                 otlp_extra="", admin_extra="", extra="", ctl_token_file="",
                 client_attribute="", grpc_extra=""):
        """`exporter_extra`: more YAML lines of exporters.otlp, indented by four spaces. A second
        Tracekeep on the same `workdir` is a restart (same data directory). `http_tls`: the
        YAML flow map of receivers.otlp.protocols.http.tls ("" = plaintext). `jaeger_storage_extra`:
        more entries of the jaeger_remote_storage flow map, after a comma. `retention`:
        storage.retention ("" = the default). `kafka`: the YAML flow map of receivers.kafka
        ("" = no Kafka receiver). `auth_token_file`: the OTLP token file of both receivers
        ("" = none). `otlp_extra`: more YAML lines of receivers.otlp, indented by four spaces.
        `admin_extra`: more entries of the admin flow map, after a comma. `extra`: more top-level
        YAML. `ctl_token_file`: the admin token tracekeepctl presents. `client_attribute`: the
        receivers' auth.client_attribute (with `auth_token_file`). `grpc_extra`: more entries of
        the receivers.otlp.protocols.grpc flow map, after a comma."""
        require(TRACEKEEP_BIN, "tracekeep (build it: scripts/build.sh)")
        os.makedirs(workdir, exist_ok=True)
        forward = (f'exporters:\n  otlp:\n    endpoint: "{forward_to}"\n'
                   f'    compression: gzip\n    batch: {{timeout: 20ms}}\n'
                   f'{exporter_extra}') if forward_to else ""
        jaeger_storage_extra = ", " + jaeger_storage_extra if jaeger_storage_extra else ""
        storage = f"storage: {{retention: {retention}}}\n" if retention else ""
        client_attribute = f", client_attribute: {client_attribute}" if client_attribute else ""
        auth = (f", auth: {{token_file: {auth_token_file}{client_attribute}}}"
                if auth_token_file else "")
        admin_extra = ", " + admin_extra if admin_extra else ""
        self.ctl_token_file = ctl_token_file
        config = f"""data_dir: {workdir}/data
{storage}receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0"{auth}{", " + grpc_extra if grpc_extra else ""}}}
      http: {{endpoint: "127.0.0.1:0"{", tls: " + http_tls if http_tls else ""}{auth}}}
{otlp_extra}{"  kafka: " + kafka if kafka else ""}
sampler:
  decision_wait: {decision_wait}
  policies:
{policies}
{forward}telemetry: {{endpoint: "127.0.0.1:0"}}
admin: {{endpoint: "127.0.0.1:0"{admin_extra}}}
jaeger_remote_storage: {{endpoint: "{jaeger_storage_endpoint}"{jaeger_storage_extra}}}
# The clients' canonical trace carries an order id shared by every trace they send; order
# tracking (tested on its own in tests/e2e) would rightly find those "orders" anomalous.
orders: {{enabled: false}}
{extra}"""
        config_path = os.path.join(workdir, "tracekeep.yaml")
        with open(config_path, "w") as f:
            f.write(config)
        endpoints_path = os.path.join(workdir, "endpoints.json")
        if os.path.exists(endpoints_path):  # a restart: wait for the new process's file
            os.remove(endpoints_path)
        log, run = os.path.join(workdir, "tracekeep.log"), 1
        while os.path.exists(log):
            run += 1
            log = os.path.join(workdir, f"tracekeep.{run}.log")
        super().__init__([TRACEKEEP_BIN, "--config", config_path, "--write-endpoints",
                          endpoints_path], log)

        def read_endpoints():
            assert self.alive(), f"tracekeep exited:\n{self.log()}"
            with open(endpoints_path) as f:
                return json.load(f)
        with self.stopped_on_failure():
            self.endpoints = wait_for(read_endpoints, 30, "tracekeep's endpoints file")
            self.grpc = self.endpoints["otlp_grpc"]
            self.http = self.endpoints["otlp_http"]
            self.admin = self.endpoints["admin"]
            self.telemetry = self.endpoints["telemetry"]
            self.jaeger_storage = self.endpoints.get("jaeger_remote_storage", "")
            wait_for(lambda: http_get(f"http://{self.telemetry}/readyz")[0] == 200, 30,
                     "tracekeep /readyz")

    def ctl(self, *args, token_file=None):
        """Runs tracekeepctl against this daemon (with `token_file`, else ctl_token_file)."""
        token_file = self.ctl_token_file if token_file is None else token_file
        argv = [TRACEKEEPCTL_BIN, "--addr", self.admin]
        if token_file:
            argv += ["--token-file", token_file]
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30)

    def trace_get(self, trace_id):
        """The stored trace as OTLP JSON (tracekeepctl trace get --json), or None if not found."""
        r = self.ctl("--json", "trace", "get", trace_id)
        if r.returncode == 1:
            return None
        assert r.returncode == 0, f"tracekeepctl failed ({r.returncode}): {r.stderr}"
        return json.loads(r.stdout)

    def wait_trace(self, trace_id, span_count, timeout_s=30):
        """Waits until `span_count` spans of the trace are stored; returns the OTLP JSON."""
        def stored():
            t = self.trace_get(trace_id)
            return t if t is not None and count_spans(t) >= span_count else None
        return wait_for(stored, timeout_s, f"trace {trace_id} with {span_count} spans in tracekeep")

    def metrics(self):
        return http_get(f"http://{self.telemetry}/metrics")[1].decode()

    def metric(self, name, labels=""):
        """The value of one series of /metrics (0 when absent)."""
        prefix = name + ("{" + labels + "}" if labels else "")
        for line in self.metrics().splitlines():
            if line.startswith(prefix + " "):
                return float(line.split()[-1])
        return 0.0


class Jaeger(Process):
    """Real Jaeger v2 with in-memory storage; OTLP and query moved to free ports."""

    def __init__(self, workdir, same_ports_as=None):
        """`same_ports_as`: a stopped Jaeger whose addresses this one takes over (a restart)."""
        os.makedirs(workdir, exist_ok=True)
        if same_ports_as is not None:
            self.otlp_grpc = same_ports_as.otlp_grpc
            self.otlp_http = same_ports_as.otlp_http
            self.query = same_ports_as.query
            self.health = same_ports_as.health
        else:
            self.otlp_grpc = f"127.0.0.1:{free_port()}"
            self.otlp_http = f"127.0.0.1:{free_port()}"
            self.query = f"127.0.0.1:{free_port()}"
            self.health = f"127.0.0.1:{free_port()}"
        config = f"""service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    logs:
      level: info
    metrics:
      level: none
    traces:
      level: none
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "{self.health}"
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: "{self.query}"
    grpc:
      endpoint: "127.0.0.1:{free_port()}"
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "{self.otlp_grpc}"
      http:
        endpoint: "{self.otlp_http}"
processors:
  batch:
    timeout: 10ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""
        config_path = os.path.join(workdir, "jaeger.yaml")
        with open(config_path, "w") as f:
            f.write(config)
        super().__init__([JAEGER_BIN, "--config", config_path],
                         os.path.join(workdir, "jaeger.log"), cwd=workdir)

        def ready():
            assert self.alive(), f"jaeger exited:\n{self.log()}"
            return http_get(f"http://{self.query}/api/services")[0] == 200
        with self.stopped_on_failure():
            wait_for(ready, 60, "Jaeger's query API")

    def trace(self, trace_id):
        """The trace as OTLP JSON from /api/v3/traces/{id}, or None while Jaeger has not got it."""
        try:
            body = http_get_json(f"http://{self.query}/api/v3/traces/{trace_id}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise
        return body.get("result", body)

    def wait_trace(self, trace_id, span_count, timeout_s=30):
        def stored():
            t = self.trace(trace_id)
            return t if t is not None and count_spans(t) >= span_count else None
        return wait_for(stored, timeout_s, f"trace {trace_id} with {span_count} spans in Jaeger")


class JaegerQuery(Process):
    """Real Jaeger v2, read-only (deploy/jaeger-query.yaml's shape): query API and UI on a free
    port, trace storage = tracekeep's Jaeger remote storage API at `storage_endpoint`."""

    def __init__(self, workdir, storage_endpoint, prometheus=""):
        """`prometheus`: host:port of a Prometheus that the Monitor tab (/api/metrics/...)
        reads span metrics from ("" = no metrics backend)."""
        require(JAEGER_BIN, "jaeger (scripts/setup.sh --peers)")
        os.makedirs(workdir, exist_ok=True)
        self.query = f"127.0.0.1:{free_port()}"
        metrics_storage = "\n      metrics: prometheus" if prometheus else ""
        metric_backends = f"""
    metric_backends:
      prometheus:
        prometheus:
          endpoint: "http://{prometheus}"
          normalize_calls: true
          normalize_duration: true""" if prometheus else ""
        config = f"""service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [nop]
      processors: [batch]
      exporters: [nop]
  telemetry:
    metrics:
      level: none
    traces:
      level: none
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "127.0.0.1:{free_port()}"
  jaeger_query:
    storage:
      traces: tracekeep{metrics_storage}
    http:
      endpoint: "{self.query}"
    grpc:
      endpoint: "127.0.0.1:{free_port()}"
  jaeger_storage:
    backends:
      tracekeep:
        grpc:
          endpoint: "{storage_endpoint}"
          tls:
            insecure: true{metric_backends}
receivers:
  nop:
processors:
  batch:
exporters:
  nop:
"""
        config_path = os.path.join(workdir, "jaeger-query.yaml")
        with open(config_path, "w") as f:
            f.write(config)
        # Jaeger's own tracing would otherwise export to localhost:4317.
        env = dict(os.environ, OTEL_TRACES_EXPORTER="none")
        super().__init__([JAEGER_BIN, "--config", config_path],
                         os.path.join(workdir, "jaeger-query.log"), cwd=workdir, env=env)

        def ready():
            assert self.alive(), f"jaeger exited:\n{self.log()}"
            return http_get(f"http://{self.query}/api/services")[0] == 200
        with self.stopped_on_failure():
            wait_for(ready, 60, "Jaeger's query API (reading tracekeep)")

    def get(self, path, **params):
        """(HTTP status, parsed JSON body) of GET path?params; errors are returned, not raised."""
        url = f"http://{self.query}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            status, body = http_get(url, timeout=30)
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")


class KafkaBroker(Process):
    """A real Apache Kafka broker: one KRaft node (broker and controller) on free loopback ports,
    from the jars `scripts/setup.sh --peers` fetched into .deps/kafka/libs."""

    def __init__(self, workdir, partitions=3):
        if not KAFKA_LIBS or not os.path.isdir(KAFKA_LIBS):
            raise AssertionError(f"no Kafka broker jars in {KAFKA_LIBS!r}: run scripts/setup.sh "
                                 "--peers (see README, Interop tests)")
        require(JAVA_BIN, "java (Debian package default-jre-headless)")
        os.makedirs(workdir, exist_ok=True)
        port, controller = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        config_path = os.path.join(workdir, "server.properties")
        with open(config_path, "w") as f:
            f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={workdir}/logs
num.partitions={partitions}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
""")
        classpath = os.path.join(KAFKA_LIBS, "*")
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        r = subprocess.run([JAVA_BIN, "-cp", classpath, "kafka.tools.StorageTool", "format",
                            "--standalone", "-t", cluster_id, "-c", config_path],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"kafka StorageTool format failed:\n{r.stdout}{r.stderr}"
        super().__init__([JAVA_BIN, "-Xmx512m", "-XX:+UseSerialGC", "-cp", classpath,
                          "kafka.Kafka", config_path], os.path.join(workdir, "kafka.log"))

        def listening():
            assert self.alive(), f"the Kafka broker exited:\n{self.log()[-8000:]}"
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        with self.stopped_on_failure():
            wait_for(listening, 90, "the Kafka broker's listener")


class JaegerToKafka(Process):
    """Real Jaeger v2 as an OpenTelemetry Collector: OTLP/gRPC in, its `kafka` exporter out, set up
    as a tracekeep deployment asks (otlp_proto, one record per trace keyed by trace id)."""

    def __init__(self, workdir, brokers, topic="otlp_spans"):
        require(JAEGER_BIN, "Jaeger v2 (scripts/setup.sh --peers builds it)")
        os.makedirs(workdir, exist_ok=True)
        self.otlp_grpc = f"127.0.0.1:{free_port()}"
        config = f"""service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [kafka]
  telemetry:
    logs:
      level: info
    metrics:
      level: none
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "{self.otlp_grpc}"
exporters:
  kafka:
    brokers: ["{brokers}"]
    traces:
      topic: {topic}
      encoding: otlp_proto
    partition_traces_by_id: true
    producer:
      required_acks: -1
    sending_queue:
      enabled: false
"""
        config_path = os.path.join(workdir, "jaeger-kafka.yaml")
        with open(config_path, "w") as f:
            f.write(config)
        super().__init__([JAEGER_BIN, "--config", config_path],
                         os.path.join(workdir, "jaeger.log"), cwd=workdir)
        host, port = self.otlp_grpc.split(":")

        def listening():
            assert self.alive(), f"jaeger exited:\n{self.log()[-8000:]}"
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        with self.stopped_on_failure():
            wait_for(listening, 60, "Jaeger's OTLP/gRPC listener")


class Prometheus(Process):
    """Real Prometheus scraping `targets` every 200 ms, storage in `workdir`."""

    def __init__(self, workdir, targets):
        require(PROMETHEUS_BIN, "prometheus (Debian package prometheus)")
        os.makedirs(workdir, exist_ok=True)
        self.addr = f"127.0.0.1:{free_port()}"
        config_path = os.path.join(workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            f.write(f"""global:
  scrape_interval: 200ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: tracekeep
    static_configs:
      - targets: {json.dumps(targets)}
""")
        super().__init__([PROMETHEUS_BIN, f"--config.file={config_path}",
                          f"--storage.tsdb.path={workdir}/tsdb",
                          f"--web.listen-address={self.addr}"],
                         os.path.join(workdir, "prometheus.log"))

        def ready():
            assert self.alive(), f"prometheus exited:\n{self.log()}"
            return http_get(f"http://{self.addr}/-/ready")[0] == 200
        with self.stopped_on_failure():
            wait_for(ready, 60, "Prometheus /-/ready")

    def query(self, expr):
        url = f"http://{self.addr}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = http_get_json(url)
        assert body["status"] == "success", body
        return body["data"]["result"]


def count_spans(otlp_json):
    return sum(len(ss.get("spans", [])) for rs in otlp_json.get("resourceSpans", [])
               for ss in rs.get("scopeSpans", []))

