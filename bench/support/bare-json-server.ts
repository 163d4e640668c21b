// The floor a request-rate benchmark measures the real app against: a bare express app that answers
// fixed JSON bodies (res.json, so serialization and express's ETag are paid per request as in the
// app), with nothing else — no authentication, no database, no validation, no logging.
// Configured by environment, started by a benchmark (bench/support/server-process.ts):
//   PORT          the port to listen on (127.0.0.1)
//   BENCH_BODIES  JSON: { "<path>": <body>, … }
import express from 'express';

const bodies: Record<string, unknown> = JSON.parse(process.env.BENCH_BODIES ?? '{}');
const app = express();
app.disable('x-powered-by');
for (const [path, body] of Object.entries(bodies)) app.get(path, (_req, res) => res.json(body));
app.listen(Number(process.env.PORT), '127.0.0.1');
