// The floor of the notifications benchmark: the routes it uses (long-poll, the stream, create a test
// notification, the admin's create for all) on bare node:http, everything in memory — no
// framework, no database, no bus, no validation beyond what the routes need to work. What our server
// does beyond this is what it costs; the benchmark prints each figure of ours beside this one.
// Forked by bench/support/bench-process.ts (mode "floor"); answers the IPC requests of ./protocol.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { SeedResult } from './protocol';
import { listen, requireOrchestrator, serveOrchestrator } from './served-process';

requireOrchestrator('floor-server.ts');

interface Notification {
  id: string;
  type: string;
  message: string;
  created_at: string;
  delivered: false;
  delivered_at: null;
  read: false;
}

interface Waiter {
  response: ServerResponse;
  timer: NodeJS.Timeout;
}

const userByToken = new Map<string, number>();
const admins = new Set<number>();
const userIds: number[] = [];
const undelivered = new Map<number, Notification[]>();
const waiters = new Map<number, Set<Waiter>>();
let waiting = 0;
/** Open Server-Sent Events streams, by user. */
const streams = new Map<number, Set<ServerResponse>>();
let streaming = 0;

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
  response.end(payload);
}

function userOf(request: IncomingMessage): number | undefined {
  const header = request.headers.authorization ?? '';
  return header.startsWith('Token ') ? userByToken.get(header.slice(6)) : undefined;
}

/** Hands the user's undelivered notifications to `response`; they are gone once it is written, back if it is not. */
function deliver(userId: number, response: ServerResponse, status: 'immediate' | 'new_notification'): void {
  const notifications = undelivered.get(userId) ?? [];
  undelivered.delete(userId);
  response.once('close', () => {
    if (response.writableFinished) return;
    undelivered.set(userId, [...notifications, ...(undelivered.get(userId) ?? [])]);
  });
  sendJson(response, 200, { status, notifications, has_new_notifications: true });
}

function wake(userId: number): void {
  const [stream] = streams.get(userId) ?? [];
  if (stream) return sendEvents(userId, stream);
  const forUser = waiters.get(userId);
  if (!forUser || !undelivered.has(userId)) return;
  // One waiting request of the user gets them (as ours: one connection, not each).
  const [waiter] = forUser;
  stopWaiting(userId, waiter);
  deliver(userId, waiter.response, 'new_notification');
}

function stopWaiting(userId: number, waiter: Waiter): void {
  clearTimeout(waiter.timer);
  const forUser = waiters.get(userId);
  if (!forUser?.delete(waiter)) return;
  waiting--;
  if (forUser.size === 0) waiters.delete(userId);
}

/** Writes the user's undelivered notifications to the stream, one event each. */
function sendEvents(userId: number, stream: ServerResponse): void {
  for (const notification of undelivered.get(userId) ?? []) {
    stream.write(`id: ${notification.id}\ndata: ${JSON.stringify(notification)}\n\n`);
  }
  undelivered.delete(userId);
}

function openStream(userId: number, response: ServerResponse): void {
  response.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
  response.write('retry: 3000\n\n');
  const forUser = streams.get(userId) ?? new Set<ServerResponse>();
  forUser.add(response);
  streams.set(userId, forUser);
  streaming++;
  response.once('close', () => {
    forUser.delete(response);
    streaming--;
    if (forUser.size === 0 && streams.get(userId) === forUser) streams.delete(userId);
  });
  sendEvents(userId, response);
}

function longPoll(userId: number, url: URL, response: ServerResponse): void {
  if (undelivered.has(userId)) return deliver(userId, response, 'immediate');
  const timeout = Number(url.searchParams.get('timeout') ?? '30');
  const waiter: Waiter = {
    response,
    timer: setTimeout(() => {
      stopWaiting(userId, waiter);
      sendJson(response, 200, { status: 'timeout', notifications: [], has_new_notifications: false });
    }, timeout * 1000),
  };
  const forUser = waiters.get(userId) ?? new Set<Waiter>();
  forUser.add(waiter);
  waiters.set(userId, forUser);
  waiting++;
  response.once('close', () => stopWaiting(userId, waiter));
}

function create(userId: number, type: string, message: string, createdAt: string): Notification {
  const notification: Notification = {
    id: randomUUID(),
    type,
    message,
    created_at: createdAt,
    delivered: false,
    delivered_at: null,
    read: false,
  };
  const queue = undelivered.get(userId);
  if (queue) queue.push(notification);
  else undelivered.set(userId, [notification]);
  return notification;
}

async function readJson(request: IncomingMessage): Promise<{ type?: string; message?: string; all?: boolean }> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://floor');
  const userId = userOf(request);
  if (userId === undefined) return sendJson(response, 401, { detail: 'Invalid token.' });
  if (request.method === 'GET' && url.pathname === '/api/notifications/long-poll/') return longPoll(userId, url, response);
  if (request.method === 'GET' && url.pathname === '/api/notifications/sse/') return openStream(userId, response);
  if (request.method !== 'POST') return sendJson(response, 404, { detail: 'Not found.' });
  const body = await readJson(request);
  const type = body.type ?? 'INFO';
  const message = body.message ?? '';
  const createdAt = new Date().toISOString();
  if (url.pathname === '/api/notifications/test/') {
    const notification = create(userId, type, message, createdAt);
    wake(userId);
    return sendJson(response, 201, { id: notification.id, message: 'Test notification sent', notification });
  }
  if (url.pathname === '/api/notifications/' && body.all === true && admins.has(userId)) {
    for (const recipient of userIds) create(recipient, type, message, createdAt);
    for (const recipient of new Set([...waiters.keys(), ...streams.keys()])) wake(recipient);
    return sendJson(response, 201, { created: userIds.length });
  }
  sendJson(response, 404, { detail: 'Not found.' });
}

async function seed(users: number, admin: boolean): Promise<SeedResult> {
  const started = performance.now();
  const newUser = (isAdmin: boolean) => {
    const userId = userIds.length + admins.size + 1;
    const token = randomBytes(20).toString('hex');
    userByToken.set(token, userId);
    if (isAdmin) admins.add(userId);
    else userIds.push(userId);
    return { userId, token };
  };
  const seeded = Array.from({ length: users }, () => newUser(false));
  const adminToken = admin ? newUser(true).token : null;
  return {
    userIds: seeded.map((user) => user.userId),
    tokens: seeded.map((user) => user.token),
    adminToken,
    ms: performance.now() - started,
  };
}

const server = createServer((request, response) => {
  route(request, response).catch(() => {
    if (!response.headersSent) sendJson(response, 400, { detail: 'Bad request.' });
  });
});
const port = await listen(server);

serveOrchestrator(
  {
    server,
    seed,
    stats: () => ({
      queries: 0,
      hub: { users: waiters.size + streams.size, subscribers: waiting + streaming, connections: waiting + streaming },
      naiveWaiting: 0,
      busHealthy: true,
    }),
    close: async () => {
      for (const forUser of waiters.values()) for (const waiter of forUser) clearTimeout(waiter.timer);
      waiters.clear();
    },
  },
  { port, mode: 'floor', dialect: 'none (in memory)', bus: 'in-memory', sqliteSynchronous: null },
);
