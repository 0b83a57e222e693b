// SPDX-License-Identifier: Apache-2.0
// An HTTP service instrumented with the OpenTelemetry JS SDK (tests/integration/test_sdk.py).
//   node service.js PORT BACKEND_PORT
// /api/health is answered here; every other request is forwarded to the backend at 127.0.0.1:BACKEND_PORT (same method and path, one
// keep-alive connection at a time) and its answer relayed. The SDK reports a SERVER span for the
// request and a CLIENT span for the call, and puts traceparent on the call; spans go to
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OTLP/HTTP protobuf) with OTEL_SERVICE_NAME as the service.
// Prints 'ready PORT' once listening; on SIGTERM flushes its spans and exits.
'use strict';

const { NodeSDK, tracing } = require('@opentelemetry/sdk-node');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');

const port = Number(process.argv[2]);
const backendPort = Number(process.argv[3]);

const sdk = new NodeSDK({
  spanProcessors: [new tracing.BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 200 })],
  instrumentations: [new HttpInstrumentation()],
});
sdk.start();

// Required after sdk.start(): the instrumentation patches the module as it loads.
const http = require('http');

const upstream = new http.Agent({ keepAlive: true, maxSockets: 1 });

const server = http.createServer((req, res) => {
  if (req.url === '/api/health') { // answered here, no call: nothing shows the SDK on the wire
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 3 });
    res.end('ok\n');
    return;
  }
  const call = http.request({ host: '127.0.0.1', port: backendPort, method: req.method,
                              path: req.url, agent: upstream }, (up) => {
    const chunks = [];
    up.on('data', (c) => chunks.push(c));
    up.on('end', () => {
      const body = Buffer.concat(chunks);
      res.writeHead(up.statusCode, { 'Content-Type': up.headers['content-type'] || 'text/plain',
                                     'Content-Length': body.length });
      res.end(body);
    });
  });
  call.on('error', (e) => {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`backend: ${e.message}\n`);
  });
  req.pipe(call);
});

server.keepAliveTimeout = 30000;
server.listen(port, '127.0.0.1', () => console.log(`ready ${port}`));

process.on('SIGTERM', () => {
  server.close();
  upstream.destroy();
  sdk.shutdown().finally(() => process.exit(0));
});
