import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { currentUser } from '../auth/authenticate';
import type { SessionsService } from '../auth/sessions.service';
import type { Metrics } from '../metrics/metrics';
import { connectionOf, whenClosed } from '../http/response-lifecycle';
import type { DeliveryHub } from '../realtime/delivery-hub';
import { serializeNotification } from './notification.serializer';
import type { DeliveryClaims } from './delivery-claims';
import type { NotificationRow, NotificationsService } from './notifications.service';

export interface SseOptions {
  heartbeatMs: number;
  /** The `retry:` hint: how long a disconnected client should wait before reconnecting. */
  retryMs: number;
  /**
   * How many bytes a stream may hold unsent for a client that does not read: past that the stream
   * is closed, and what it had not written stays undelivered (its claims are given back).
   */
  maxBufferedBytes: number;
}

const BATCH = 100;

export interface StreamDeps {
  notifications: NotificationsService;
  claims: DeliveryClaims;
  hub: DeliveryHub;
  realtime: SseOptions;
  metrics: Metrics;
  sessions: SessionsService;
}

/**
 * GET /api/notifications/sse/ — a plain express handler: ts-rest cannot type or serve a stream
 * cleanly, but the route is still declared in the contract for the docs and the SDK. (Its plain
 * request is served before express: notifications/lean-routes.ts.)
 */
export function sseHandler(deps: StreamDeps) {
  return (req: Request, res: Response, next: NextFunction) => {
    const stream = {
      res,
      userId: currentUser(req).id,
      authorization: req.headers.authorization,
      lastEventId: req.get('last-event-id'),
      setHeaders: () => {},
      log: () => req.log,
    };
    openStream(deps, stream).catch(next);
  };
}

export interface StreamRequest {
  res: ServerResponse;
  userId: number;
  /** The header the stream was opened with: asked again when the user's sessions change. */
  authorization: string | undefined;
  lastEventId: string | undefined;
  /** Sets what the app sets on every answer (express did already: nothing to do then). */
  setHeaders(): void;
  log(): Logger;
}

/** Opens the stream: its head, then the backlog and whatever comes (NotificationStream). */
export async function openStream(
  { notifications, claims, hub, realtime, metrics, sessions }: StreamDeps,
  { res, userId, authorization, lastEventId, setHeaders, log }: StreamRequest,
): Promise<void> {
  const releaseConnection = hub.acquireConnection(userId);
  const streamClosed = metrics.streamOpened();
  const release = () => {
    releaseConnection();
    streamClosed();
  };
  try {
    // The client says it has this event: that is a delivery, even if our write callback never came.
    if (lastEventId) await notifications.markReceived(userId, [lastEventId]);
    setHeaders();
  } catch (error) {
    release();
    throw error;
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  const delivered = (row: NotificationRow) => metrics.delivered('sse', [row.createdAt]);
  const stillSignedIn = () => sessions.stillSignedIn(authorization);
  new NotificationStream(userId, res, claims, hub, realtime, release, delivered, stillSignedIn, log).start();
}

/**
 * One open stream: sends the backlog, then whatever the hub wakes it for. Each event is marked
 * delivered after its write has succeeded; until then it stays claimed (see DeliveryClaims), so a
 * wake-up in between, or another connection of the user, does not send it again.
 */
class NotificationStream {
  /** Written, but the write has not reported back yet. */
  private readonly unconfirmed = new Set<string>();
  private pumping = false;
  private pumpAgain = false;
  private closed = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private unsubscribe: () => void = () => {};
  /** Kept: the response lets go of its socket when it closes, and a late write callback asks after it. */
  private socket: ServerResponse['socket'] = null;

  constructor(
    private readonly userId: number,
    private readonly res: ServerResponse,
    private readonly claims: DeliveryClaims,
    private readonly hub: DeliveryHub,
    private readonly options: SseOptions,
    private readonly release: () => void,
    /** Told of each event marked delivered. */
    private readonly delivered: (row: NotificationRow) => void,
    /** Rejects once the token the stream was opened with no longer holds (asked when the user's sessions change). */
    private readonly stillSignedIn: () => Promise<void>,
    private readonly log: () => Logger,
  ) {}

  start(): void {
    this.socket = connectionOf(this.res);
    // Also when only its connection closes (a stream pipelined behind another answer: see whenClosed).
    whenClosed(this.res, () => this.close());
    // The client left while the request was being authenticated: closed at once.
    if (this.closed) return;
    this.res.write(`retry: ${this.options.retryMs}\n\n`);
    this.unsubscribe = this.hub.subscribe(this.userId, {
      wake: () => void this.pump(),
      shutdown: () => this.end(),
      // A logout or revocation of its token ends the stream: the client's next connection gets the 401.
      sessionsChanged: () => void this.stillSignedIn().catch(() => this.end()),
    });
    this.heartbeat = setInterval(() => this.res.write(': heartbeat\n\n'), this.options.heartbeatMs);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        let batch: NotificationRow[];
        do {
          batch = await this.claims.take(this.userId, BATCH);
          this.sendAll(batch);
        } while (batch.length === BATCH && !this.closed);
      } while (this.pumpAgain && !this.closed);
    } catch (error) {
      this.log().error({ err: error }, 'notification stream failed; closing it');
      this.res.destroy();
    } finally {
      this.pumping = false;
    }
  }

  /** Sends a batch; one that fails to serialize fails the stream (pump), and what was not sent is given back first. */
  private sendAll(batch: NotificationRow[]): void {
    let sent = 0;
    try {
      for (; sent < batch.length; sent++) this.send(batch[sent]);
    } catch (error) {
      this.claims.abandon(this.userId, batch.slice(sent).map((row) => row.id));
      throw error;
    }
  }

  private send(row: NotificationRow): void {
    // Ended (shutdown) but not yet closed: a write after the end would be an error event, not an event.
    if (this.closed || this.res.writableEnded) return this.claims.abandon(this.userId, [row.id]);
    // A client that stops reading: its memory here must not grow without bound. Closing the stream
    // gives back every claim not yet written out (close()), so nothing is lost, only delayed.
    if (this.res.writableLength > this.options.maxBufferedBytes) {
      this.log().warn({ bufferedBytes: this.res.writableLength }, 'notification stream closed: its client does not read');
      this.claims.abandon(this.userId, [row.id]);
      this.res.destroy();
      return this.close();
    }
    // Serialized before it counts as written: a row that fails to is given back by sendAll, once.
    const event = `id: ${row.id}\ndata: ${JSON.stringify(serializeNotification(row))}\n\n`;
    this.unconfirmed.add(row.id);
    this.res.write(event, (error) => {
      // Already abandoned by close(): the claim may belong to another connection by now.
      if (!this.unconfirmed.delete(row.id)) return;
      // Node calls back without an error also for a write still in progress when the client reset
      // the connection: the socket is destroyed by then, and the event may never have reached it.
      if (error || this.socket?.destroyed) this.claims.abandon(this.userId, [row.id]);
      else void this.confirm(row);
    });
  }

  /** Marks a written event delivered (the service folds the confirmations of a moment into one UPDATE). */
  private async confirm(row: NotificationRow): Promise<void> {
    try {
      await this.claims.confirm(this.userId, [row.id]);
      this.delivered(row);
    } catch (error) {
      // Left undelivered: it will be sent again (at-least-once).
      this.log().error({ err: error }, 'marking a streamed notification delivered failed');
    }
  }

  /**
   * The server is shutting down, or the stream's token was revoked: ends the response, and writes nothing more (not even a heartbeat:
   * node emits a write after the end as an 'error' on the response, which nothing handles). What was
   * written reports back as usual; 'close' comes once the client has the end (close()).
   */
  private end(): void {
    clearInterval(this.heartbeat);
    this.unsubscribe();
    this.res.end();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.unsubscribe();
    this.release();
    // A write that never reports back must not hold its claim: offer it to the user's other connections.
    if (this.unconfirmed.size > 0) this.claims.abandon(this.userId, [...this.unconfirmed]);
    this.unconfirmed.clear();
  }
}
