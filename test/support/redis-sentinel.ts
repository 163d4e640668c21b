import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { RedisTarget } from '../../server/realtime/redis-target';
import { RedisServer } from './redis-server';
import { until } from './waiting';

/**
 * A Redis master, a replica of it and a sentinel watching them (quorum 1: enough to fail over in a
 * test), each a redis-server of the test's own. `failOver()` kills the master as a crash would and
 * waits until the sentinel has made the replica the master.
 */
export class SentinelSetup {
  private constructor(
    readonly name: string,
    private master: RedisServer,
    private replica: RedisServer,
    private readonly sentinel: RedisServer,
    private readonly dir: string,
  ) {}

  static async start(name = 'punchclock'): Promise<SentinelSetup> {
    const master = await RedisServer.start();
    const replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const dir = mkdtempSync(join(os.tmpdir(), 'punchclock-sentinel-'));
    const configFile = join(dir, 'sentinel.conf');
    writeFileSync(
      configFile,
      [
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const sentinel = await RedisServer.start({ configFile, args: ['--sentinel'] });
    const setup = new SentinelSetup(name, master, replica, sentinel, dir);
    await setup.untilReplicaReady();
    return setup;
  }

  get target(): RedisTarget {
    return { sentinels: [{ host: '127.0.0.1', port: this.sentinel.port }], name: this.name };
  }

  /** The port of the master as the sentinel names it now. */
  async masterPort(): Promise<number> {
    const [, port] = (await this.ask(this.sentinel.port, 'sentinel', 'get-master-addr-by-name', this.name)) as [string, string];
    return Number(port);
  }

  /**
   * Kills the master (SIGKILL) and waits until the sentinel has promoted the replica; then a new
   * replica of the new master joins, so that the setup can fail over again.
   */
  async failOver(): Promise<void> {
    await this.master.stop();
    await until(async () => (await this.masterPort()) === this.replica.port, 'the sentinel to promote the replica', 30_000);
    this.master = this.replica;
    this.replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(this.master.port)] });
    await this.untilReplicaReady();
  }

  /** Failing over needs a replica that has copied the master and that the sentinel knows as healthy. */
  private async untilReplicaReady(): Promise<void> {
    await until(async () => /master_link_status:up/.test((await this.ask(this.replica.port, 'info', 'replication')) as string), 'the replica to sync', 30_000);
    await until(async () => {
      const replicas = (await this.ask(this.sentinel.port, 'sentinel', 'replicas', this.name)) as string[][];
      return replicas.some((fields) => {
        const field = (key: string) => fields[fields.indexOf(key) + 1];
        return field('name') === `127.0.0.1:${this.replica.port}` && field('flags') === 'slave';
      });
    }, 'the sentinel to know the replica', 30_000);
  }

  async stop(): Promise<void> {
    await Promise.allSettled([this.sentinel.stop(), this.master.stop(), this.replica.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async ask(port: number, ...command: string[]): Promise<unknown> {
    const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      await redis.connect();
      return await redis.call(command[0], ...command.slice(1));
    } finally {
      redis.disconnect();
    }
  }
}
