import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServerOptions {
  /** A config file, read first (a sentinel needs one it can write). */
  configFile?: string;
  /** More arguments: `['--replicaof', host, port]`, `['--sentinel']`. */
  args?: string[];
}

/**
 * A redis-server of the test's own, on a free port, that the test may kill and start again (the
 * shared Redis of TEST_REDIS_URL serves other test files and must stay up). Needs `redis-server`
 * on the PATH.
 */
export class RedisServer {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  private get dumpFile(): string {
    return `punchclock-test-redis-${this.port}.rdb`;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  /**
   * Starts redis-server on this server's port and resolves once it answers PING (20 s at most: a
   * loaded machine). Should the port be taken meanwhile (between freePort and the spawn, or while
   * this server was stopped, by another test file's listen(0) of a moment), it tries again until then.
   */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.process) return;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.startOnce(deadline, timeoutMs);
      } catch (error) {
        if (!(error instanceof PortTaken) || Date.now() > deadline) throw error;
        await sleep(50);
      }
    }
  }

  private async startOnce(deadline: number, timeoutMs: number): Promise<void> {
    const { configFile, args = [] } = this.options;
    const child = spawn(
      'redis-server',
      // A replica writes the copy it syncs to disk whatever `save` says: into the temp directory, not the working one.
      [...(configFile ? [configFile] : []), '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir(), '--dbfilename', this.dumpFile, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.process = child;
    // redis-server logs to stdout (why it could not start, too); read on so that it never blocks.
    let output = '';
    const keep = (chunk: Buffer) => void (output = (output + chunk).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<never>((_, reject) => {
      child.once('error', reject);
      // 'close', not 'exit': by then all it wrote has been read.
      child.once('close', (code, signal) => {
        const message = `redis-server exited at start (code ${code}, signal ${signal}): ${output.trim()}`;
        reject(/Address already in use/.test(output) ? new PortTaken(message) : new Error(message));
      });
    });
    exited.catch(() => {});
    child.once('exit', () => {
      if (this.process === child) this.process = undefined;
    });
    try {
      for (;;) {
        if (await Promise.race([ping(this.port), exited])) return;
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING in ${timeoutMs} ms`);
        await Promise.race([sleep(50), exited]); // the pace of asking again, not a wait for readiness
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Freezes redis-server (SIGSTOP): connections stay open but nothing is answered. */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  /** Lets a paused redis-server go on (SIGCONT). */
  resume(): void {
    this.process?.kill('SIGCONT');
  }

  /** Kills redis-server (SIGKILL: a crash, not a graceful shutdown) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    rmSync(join(tmpdir(), this.dumpFile), { force: true });
  }
}

/** True when something on the port answers PING with PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    // Unanswered for a while: counts as no answer yet, and start() asks again until its deadline.
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on now. */
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** redis-server could not listen: something else had the port. */
class PortTaken extends Error {}
