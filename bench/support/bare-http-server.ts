// The floor of `npm run bench:http` (bench/http.ts): a bare express app doing the work of two routes
// and nothing else — no authentication, no validation, no logging, no headers of ours.
//   GET  /auth/users/me/            answers a fixed JSON body with res.json (as the app answers the user)
//   POST /api/notifications/test/   parses the JSON body (express.json) and inserts one row with
//                                   better-sqlite3 into a table of the same columns, answering 201
//                                   with a body of the app's shape
// Configured by environment, started by the benchmark (bench/support/server-process.ts):
//   PORT          the port to listen on (127.0.0.1)
//   BENCH_ME      JSON: the body GET /auth/users/me/ answers
//   BENCH_SQLITE  the SQLite file to insert into (created)
import { randomUUID } from 'node:crypto';
import Sqlite from 'better-sqlite3';
import express from 'express';

const me: unknown = JSON.parse(process.env.BENCH_ME ?? '{}');
const sqlite = new Sqlite(process.env.BENCH_SQLITE ?? ':memory:');
sqlite.pragma('journal_mode = WAL');
sqlite.exec(`create table if not exists notifications (
  id text primary key, user_id integer not null, message text not null, type text not null,
  is_read integer not null default 0, created_at integer not null, delivered_at integer, read_at integer)`);
const insert = sqlite.prepare('insert into notifications (id, user_id, message, type, created_at) values (?, ?, ?, ?, ?)');

const app = express();
app.disable('x-powered-by');
app.get('/auth/users/me/', (_req, res) => res.json(me));
app.post('/api/notifications/test/', express.json(), (req, res) => {
  const { message, type } = req.body as { message: string; type: string };
  const id = randomUUID();
  const createdAt = new Date();
  insert.run(id, 1, message, type, createdAt.getTime());
  res.status(201).json({
    id,
    message: 'Test notification sent',
    notification: { id, type, message, created_at: createdAt.toISOString(), delivered: false, delivered_at: null, read: false },
  });
});
app.listen(Number(process.env.PORT), '127.0.0.1');
