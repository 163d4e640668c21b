import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a server (Postgres, say) that a test can freeze: while
 * frozen it still accepts connections but passes nothing on in either direction, so the client
 * sees a server that holds its connections and never answers. Only the connections through the
 * proxy are affected, never the server itself (which other tests share).
 */
export class FreezableProxy {
  private frozen = false;
  private readonly pairs = new Set<Pair>();

  private constructor(private readonly server: Server) {}

  /** A proxy in front of the Postgres server of `databaseUrl`, and the URL that goes through it. */
  static async inFrontOfPostgres(databaseUrl: string): Promise<{ proxy: FreezableProxy; url: string }> {
    const url = new URL(databaseUrl);
    const proxy = await FreezableProxy.start({ host: url.hostname, port: Number(url.port || 5432) });
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    return { proxy, url: url.toString() };
  }

  static async start(target: { host: string; port: number }): Promise<FreezableProxy> {
    const server = createServer();
    const proxy = new FreezableProxy(server);
    server.on('connection', (client) => proxy.accept(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** From now on nothing goes through: bytes are held, in both directions. */
  freeze(): void {
    this.frozen = true;
  }

  /** Passes on what was held, and everything after. */
  thaw(): void {
    this.frozen = false;
    for (const pair of this.pairs) pair.flush();
  }

  /** Cuts every connection and stops listening. */
  async close(): Promise<void> {
    for (const pair of this.pairs) pair.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    const pair = new Pair(client, upstream, () => this.frozen);
    this.pairs.add(pair);
    const end = () => {
      pair.destroy();
      this.pairs.delete(pair);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }
}

class Pair {
  private readonly held: Array<[Socket, Buffer]> = [];

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    private readonly isFrozen: () => boolean,
  ) {
    client.on('data', (chunk) => this.pass(upstream, chunk));
    upstream.on('data', (chunk) => this.pass(client, chunk));
  }

  flush(): void {
    for (const [to, chunk] of this.held.splice(0)) to.write(chunk);
  }

  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  private pass(to: Socket, chunk: Buffer): void {
    if (this.isFrozen()) this.held.push([to, chunk]);
    else to.write(chunk);
  }
}
