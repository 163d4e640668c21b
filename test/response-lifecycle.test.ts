// How the long-poll learns whether its answer reached the client (server/http/response-lifecycle.ts):
// 'written' marks what it carried delivered, 'lost' offers it again, so each answer must end in
// exactly one of them — one that ends in neither keeps its notifications claimed, never delivered.
// Real sockets, since what is tested is how Node's responses and sockets behave.
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { whenResponseSettles } from '../server/http/response-lifecycle';
import { graceForStrayEvents, until } from './support/waiting';

describe('whenResponseSettles', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  /** A server whose one handler is `handle`; what settling told, in order. */
  async function serving(handle: (req: IncomingMessage, res: ServerResponse, watch: () => void) => void) {
    const outcomes: string[] = [];
    server = createServer((req, res) => {
      const watch = () => whenResponseSettles(res, { written: () => outcomes.push('written'), lost: () => outcomes.push('lost') });
      handle(req, res, watch);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { outcomes, port: (server.address() as AddressInfo).port };
  }

  it('says written once an answer has reached the socket of a client that reads it', async () => {
    const { outcomes, port } = await serving((_req, res, watch) => {
      watch();
      res.end('{"ok":true}');
    });
    await new Promise((resolve) => get({ port, host: '127.0.0.1' }, (answer) => answer.resume().on('end', resolve)));
    await until(() => outcomes.length > 0, 'an outcome');
    await graceForStrayEvents();
    expect(outcomes).toEqual(['written']);
  });

  it('says lost, at once, for a client that had gone before the answer was ready', async () => {
    let answer: () => void = () => {};
    const { outcomes, port } = await serving((_req, res, watch) => {
      res.on('close', () => {
        watch();
        answer = () => res.end('{}');
      });
    });
    const client = connect(port, '127.0.0.1', () => client.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n', () => client.destroy()));
    await until(() => outcomes.length > 0, 'an outcome');
    answer();
    await graceForStrayEvents();
    expect(outcomes).toEqual(['lost']);
  });

  it('says lost for an answer ended onto a socket destroyed a moment before, whose close has not come yet', async () => {
    // Node then drops the answer without a 'finish', while `res.writableFinished` reads true: this
    // is how a closing browser tab's long-poll kept its notification claimed, undelivered, for good.
    const { outcomes, port } = await serving((req, res, watch) => {
      req.socket.destroy();
      watch();
      res.end('{}');
    });
    await new Promise((resolve) => get({ port, host: '127.0.0.1' }).on('error', resolve));
    await until(() => outcomes.length > 0, 'an outcome');
    await graceForStrayEvents();
    expect(outcomes).toEqual(['lost']);
  });

  it('says lost for a large answer the client reset the connection on before reading it', async () => {
    const { outcomes, port } = await serving((_req, res, watch) => {
      watch();
      res.end(Buffer.alloc(32 * 1024 * 1024, 'x'));
    });
    const client = connect(port, '127.0.0.1', () => client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    client.pause();
    await new Promise((resolve) => client.once('readable', resolve));
    client.resetAndDestroy();
    await until(() => outcomes.length > 0, 'an outcome');
    await graceForStrayEvents();
    expect(outcomes).toEqual(['lost']);
  });
});
