// Sends canonical interop traces (tests/interop/otlp.py) with the OpenTelemetry JavaScript SDK.
// Usage: node client.js --protocol grpc|http/protobuf|http/json --endpoint URL
//                       [--compression gzip|none] [--errors N] [--healthy N] [--service NAME]
// Prints {"error": [trace ids], "healthy": [trace ids]} as JSON.
'use strict';

const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const api = require('@opentelemetry/api');

function parseArgs(argv) {
  const a = { compression: 'none', errors: 1, healthy: 0, service: 'interop-js' };
  for (let i = 2; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
  a.errors = Number(a.errors);
  a.healthy = Number(a.healthy);
  return a;
}

function makeExporter(a) {
  const compression = a.compression === 'gzip' ? 'gzip' : 'none';
  if (a.protocol === 'grpc') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter({ url: a.endpoint, compression });
  }
  const url = `${a.endpoint}/v1/traces`;
  if (a.protocol === 'http/protobuf') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter({ url, compression });
  }
  if (a.protocol === 'http/json') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter({ url, compression });
  }
  throw new Error(`unknown --protocol ${a.protocol}`);
}

function sendTrace(tracer, error) {
  return tracer.startActiveSpan('checkout', { kind: api.SpanKind.SERVER }, (root) => {
    root.setAttribute('order.id', 'A-1');
    root.setAttribute('order.paid', true);
    root.setAttribute('order.items_count', 3);
    root.setAttribute('order.total_price', 12.5);
    root.setAttribute('order.tags', ['red', 'large']);
    root.setAttribute('order.sizes', [1, 2]);
    root.addEvent('order.status_changed', { 'order.status': 'SUBMITTED', attempt: 2 });
    const link = {
      context: {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: api.TraceFlags.SAMPLED,
        isRemote: true,
      },
      attributes: { 'link.reason': 'retry' },
    };
    const child = tracer.startSpan('db.query', { kind: api.SpanKind.CLIENT, links: [link] });
    child.setAttribute('db.system', 'postgresql');
    if (error) child.setStatus({ code: api.SpanStatusCode.ERROR, message: 'connection reset' });
    child.end();
    root.end();
    return root.spanContext().traceId;
  });
}

async function main() {
  const a = parseArgs(process.argv);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': a.service }),
    spanProcessors: [new BatchSpanProcessor(makeExporter(a), { scheduledDelayMillis: 50 })],
  });
  provider.register();
  const tracer = api.trace.getTracer('tracekeep.interop', '1.0.0');
  const out = { error: [], healthy: [] };
  for (let i = 0; i < a.errors; i++) out.error.push(sendTrace(tracer, true));
  for (let i = 0; i < a.healthy; i++) out.healthy.push(sendTrace(tracer, false));
  await provider.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
