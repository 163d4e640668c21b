import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { STRONG_PASSWORD } from './api';
import { until } from './waiting';

const ROOT = new URL('../..', import.meta.url).pathname;

export interface LogLine {
  msg: string;
  url?: string;
  [field: string]: unknown;
}

/** `npm start` as a real process (server/main.ts under tsx), configured only by its environment. */
export interface ChildServer {
  base: string;
  process: ChildProcess;
  /** Every line it has logged so far (JSON). */
  lines: LogLine[];
  /** Resolves with the exit code once it has exited. */
  exited: Promise<number | null>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
}

/** How the server is run: `npm start`'s way unless given (the bundle of `npm run build`, say). */
const NPM_START = ['--import', 'tsx', 'server/main.ts'];

/**
 * Starts the server (server/main.ts, or what `nodeArgs` name) on a free port with `env` over a
 * neutral environment (no REDIS_URL, no CORS_ORIGINS, LOG_LEVEL info unless given) and resolves once
 * it logs that it listens. `command` runs the arguments instead of node: `npm` runs a script of
 * package.json as an operator does (see npmScript).
 */
export async function startServer(env: Record<string, string>, nodeArgs: string[] = NPM_START, command = process.execPath): Promise<ChildServer> {
  const child = spawn(command, nodeArgs, {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', REDIS_URL: '', CORS_ORIGINS: '', RATE_LIMITS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<LogLine>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as LogLine;
      lines.push(line);
      if (line.msg === 'punchclock listening') resolve(line);
    });
    void exited.then((code) => reject(new Error(`server exited early with ${code}: ${stderr.trim()}`)));
  });
  try {
    const { url, pid } = await listening;
    return {
      base: url!,
      process: child,
      lines,
      exited,
      kill: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
        // The server may be a process of its own under the one started (npm's, a loader's): a SIGKILL does not pass on.
        if (pid !== child.pid && isRunning(pid as number)) process.kill(pid as number, 'SIGKILL');
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** npm's arguments for running a script of package.json (`start`, `start:prod`) with nothing of its own on stdout. */
export const npmScript = (script: string): string[] => ['run', script, '--silent'];

/** The pid of the server process itself, from its log (not npm's, nor a loader's, when they run it). */
export const serverPid = (server: ChildServer): number => server.lines.find((line) => line.msg === 'punchclock listening')!.pid as number;

/** Whether a process of this pid is running. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * An operator's SIGTERM to the process they started (npm, for `npm start`): the server behind it
 * must get it — answer its waiting long-poll at once, and exit. Kills a server left behind.
 */
export async function stopsGracefullyOnSigterm(server: ChildServer): Promise<{ answer: Answer; signalledAt: number }> {
  const pid = serverPid(server);
  const held = await heldLongPoll(server.base, 60);
  try {
    const signalledAt = Date.now();
    server.process.kill('SIGTERM');
    await until(() => !isRunning(pid), 'the server process to exit');
    return { answer: await held.answer, signalledAt };
  } finally {
    held.close();
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  }
}

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
  /** When the whole answer had come (Date.now()). */
  at: number;
}

export async function call(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.Authorization = `Token ${options.token}`;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(base + path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers, at: Date.now() };
}

export interface ChildUser {
  id: number;
  username: string;
  token: string;
}

/** Registers a user over the API and logs it in. */
export async function registerUser(base: string): Promise<ChildUser> {
  const username = `child_${randomBytes(5).toString('hex')}`;
  const registered = await call(base, 'POST', '/auth/users/', { body: { username, password: STRONG_PASSWORD } });
  if (registered.status !== 201) throw new Error(`registration answered ${registered.status}`);
  const login = await call(base, 'POST', '/auth/token/login/', { body: { username, password: STRONG_PASSWORD } });
  if (login.status !== 200) throw new Error(`login answered ${login.status}`);
  return { id: registered.body.id, username, token: login.body.auth_token };
}

/** README, "Limits": at most 6 long-polls and SSE streams together per user. */
const CONNECTIONS_PER_USER = 6;

export interface OpenStream {
  /** The ids of the events it has sent, with when each came (Date.now()). */
  events: Array<{ id: string; at: number }>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
}

export interface HeldPoll {
  user: ChildUser;
  /** The poll's answer, when it comes. */
  answer: Promise<Answer>;
  /** The SSE streams that fill the user's other connection slots (they also get the user's notifications). */
  streams: OpenStream[];
  /** Aborts the poll and the streams. */
  close(): void;
}

/**
 * Starts a long-poll on a server process and resolves once the server holds it — known from outside,
 * without a fixed sleep, through the cap on a user's open connections: the user's other slots are
 * filled with SSE streams (a stream's headers come only once it is counted), and one more stream is
 * then refused with 429 only if the poll is counted too. Should the probe get in before the poll
 * (which the poll's 429 then shows), it starts over with another user.
 */
export async function heldLongPoll(base: string, timeoutSeconds: number, attempts = 3): Promise<HeldPoll> {
  for (let attempt = 1; ; attempt++) {
    const user = await registerUser(base);
    const controller = new AbortController();
    const answer = callWithSignal(base, `/api/notifications/long-poll/?timeout=${timeoutSeconds}`, user.token, controller.signal);
    answer.catch(() => {});
    const streams: OpenStream[] = [];
    const close = () => controller.abort();
    try {
      for (let i = 1; i < CONNECTIONS_PER_USER; i++) streams.push(await openStream(base, user.token, controller.signal));
      const probe = new AbortController();
      const probed = await fetch(`${base}/api/notifications/sse/`, {
        headers: { Authorization: `Token ${user.token}` },
        signal: AbortSignal.any([probe.signal, controller.signal]),
      });
      probe.abort();
      if (probed.status === 429) return { user, answer, streams, close };
      if (probed.status !== 200) throw new Error(`the probe stream answered ${probed.status}`);
    } catch (error) {
      close();
      throw error;
    }
    close();
    if (attempt >= attempts) throw new Error(`the long-poll was not held after ${attempts} attempts`);
  }
}

/** Opens an SSE stream; resolves once its headers came (it is counted), and then records its events. */
async function openStream(base: string, token: string, signal: AbortSignal): Promise<OpenStream> {
  const res = await fetch(`${base}/api/notifications/sse/`, { headers: { Authorization: `Token ${token}` }, signal });
  if (res.status !== 200) throw new Error(`an SSE stream answered ${res.status}`);
  const events: OpenStream['events'] = [];
  const ended = (async () => {
    let buffer = '';
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const id = /^id: (.+)$/m.exec(buffer.slice(0, end))?.[1];
        if (id) events.push({ id, at: Date.now() });
        buffer = buffer.slice(end + 2);
      }
    }
  })();
  ended.catch(() => {}); // aborted
  return { events, ended };
}

async function callWithSignal(base: string, path: string, token: string, signal: AbortSignal): Promise<Answer> {
  const response = await fetch(base + path, { headers: { Authorization: `Token ${token}` }, signal });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers, at: Date.now() };
}
