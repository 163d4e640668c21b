// A server as its own process (the real one, server/main.ts, or a baseline), on a free port, for
// benchmarks that load it from this process: the load generator and the server each get a core.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { compiledEntry } from './compiled-entry';
import { sleep } from './measure';

const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ServerProcess {
  port: number;
  url: string;
  /** SIGTERM (the server's graceful shutdown), SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void>;
}

/** Starts `entry` (a path from the repository's root), bundled as production runs it (compiled-entry.ts), with `env` and PORT, once it answers HTTP. */
export async function startServerProcess(entry: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--enable-source-maps', await compiledEntry(entry)], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (!(await answers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${entry} did not start within ${timeoutMs} ms (exit code ${child.exitCode})`);
    }
    await sleep(100);
  }
  return { port, url, stop: () => stop(child, exited) };
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Whether anything answers HTTP at `url` (any status). */
export function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(url, (response) => {
      response.resume();
      resolve(true);
    });
    request.setTimeout(1000, () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
