import { and, asc, eq, gt, gte, lt, sql } from 'drizzle-orm';
import { pino, type Logger } from 'pino';
import type { Store } from '../../db/open-database';
import { rowsAffected } from '../../db/rows-affected';
import { NotFound, Unauthenticated } from '../errors';
import { PeriodicJob } from '../jobs/periodic-job';
import { TickBatcher } from '../realtime/tick-batcher';
import { decodeCursor, IdCursor, pageOf, type Page, type PageRequest } from '../pagination/keyset-cursor';
import { withoutSecrets, type AuthUser } from './auth.service';
import { SessionCache, type Session } from './session-cache';
import { digestToken, newToken, tokenFromAuthorization } from './tokens';

/** What a request that passed authentication carries: who, with which token, and that token's row. */
export interface AuthenticatedSession {
  user: AuthUser;
  token: string;
  tokenId: number;
}

/** One of a user's sessions as they see it listed (never the token, nor its digest). */
export interface SessionView {
  id: number;
  createdAt: Date;
  lastUsedAt: Date;
  userAgent: string | null;
  /** When it expires unless used before (TOKEN_TTL_DAYS); null when tokens never expire. */
  expiresAt: Date | null;
}

export interface SessionsOptions {
  /** TOKEN_TTL_DAYS: a token unused for this long is refused (sliding expiry); undefined: never. */
  ttlMs?: number;
  /** Where a failed write of a token's last use is reported. */
  logger?: Logger;
}

/**
 * How often a token's `last_used_at` is written: at most once a minute per token and instance, so
 * that a client's requests do not each cost a write. The list of sessions and the sliding expiry see
 * use to within this.
 */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** Longer user agents are cut: the list shows what a person recognises their device by. */
export const USER_AGENT_LENGTH = 512;

/** How often tokens past their lifetime are deleted, when they have one. */
const PURGE_EVERY_MS = 60 * 60_000;

/** Tokens with their users, read as a session; the caller says which tokens. */
function sessionsQuery({ db, t }: Store) {
  return db
    .select({ digest: t.authTokens.digest, user: t.users, tokenId: t.authTokens.id, lastUsedAt: t.authTokens.lastUsedAt, createdAt: t.authTokens.createdAt })
    .from(t.authTokens)
    .innerJoin(t.users, eq(t.users.id, t.authTokens.userId));
}

/**
 * The query a request whose token is not in the cache runs, built and prepared once: building a
 * drizzle query and preparing its SQL cost more than running it.
 */
function prepareSessionByDigest(store: Store) {
  return (
    sessionsQuery(store)
      // No LIMIT: the digest is unique. SQLite runs a statement with a bound LIMIT (drizzle binds
      // every limit) ~8× slower than without one.
      .where(eq(store.t.authTokens.digest, sql.placeholder('digest')))
      .prepare('session_by_token_digest')
  );
}

/**
 * How many token lookups, and last-use writes, one query serves at most. When a broadcast wakes
 * thousands of clients whose cached sessions have expired, their re-polls' lookups come in the same
 * few turns of the event loop: one query per token was 11,078 queries in a broadcast to 19,000.
 */
const TOKENS_PER_QUERY = 500;

/**
 * Tokens and the sessions they open: handing one out at login, knowing whose a request's token is
 * (from the cache when this process knows it), its sliding expiry and last use, and a user's list
 * and revocation of their sessions. Every revocation is announced on the bus (SessionCache), so it
 * holds on every instance from the next request on.
 */

/** A lookup the database failed to answer (see stillSignedIn). */
const NO_ANSWER: unique symbol = Symbol('no answer');
export class SessionsService {
  /** Deletes tokens past their lifetime every hour once started (server/main.ts); idle without TOKEN_TTL_DAYS. */
  readonly purging: PeriodicJob;
  private readonly sessionByDigest: ReturnType<typeof prepareSessionByDigest>;
  private readonly lookups = new TickBatcher((digests: string[]) => this.loadBatch(digests), TOKENS_PER_QUERY);
  private readonly uses = new TickBatcher((uses: TokenUse[]) => this.writeUses(uses), TOKENS_PER_QUERY);
  private readonly ttlMs: number | undefined;
  private readonly logger: Logger;

  constructor(
    private readonly store: Store,
    private readonly cache: SessionCache = new SessionCache(),
    { ttlMs, logger = pino({ enabled: false }) }: SessionsOptions = {},
  ) {
    this.ttlMs = ttlMs;
    this.logger = logger;
    this.sessionByDigest = prepareSessionByDigest(store);
    this.purging = new PeriodicJob('expired token purge', PURGE_EVERY_MS, () => this.purgeExpired(), logger);
  }

  /** A new token of the user's (what a login hands out), noting the client's user agent. */
  async open(userId: number, userAgent?: string): Promise<string> {
    const { token, digest } = newToken();
    const now = new Date();
    const { db, t } = this.store;
    await db.insert(t.authTokens).values({ userId, digest, createdAt: now, lastUsedAt: now, userAgent: userAgent?.slice(0, USER_AGENT_LENGTH) || null });
    return token;
  }

  /**
   * What `authenticate` would answer, when this process knows the token already; undefined when it
   * must be looked up (or cannot be valid). Lets a request go on without waiting for a promise.
   */
  knownSession(authorization: string | undefined): AuthenticatedSession | undefined {
    const token = authorization === undefined ? null : tokenFromAuthorization(authorization);
    const session = token === null ? undefined : this.cache.knownSession(digestToken(token));
    return session && token ? this.admit(session, token) : undefined;
  }

  /**
   * Calls `admit` with the session the header authenticates — at once, without the hop through a
   * promise, when this process knows the token; else once the database has said — or `refuse` with
   * why not (Unauthenticated, or the database's failure).
   */
  whenAuthenticated(
    authorization: string | undefined,
    admit: (session: AuthenticatedSession) => void,
    refuse: (error: unknown) => void,
  ): void {
    const known = this.knownSession(authorization);
    if (known) admit(known);
    else this.authenticate(authorization).then(admit, refuse);
  }

  /**
   * For a connection that stays open (a long-poll, a stream), when the user's sessions changed: whether
   * the token it was opened with still holds, asked of the database (not the cache, which may not have
   * heard of the change yet). Rejects with Unauthenticated when it does not; a failure of the database
   * is no answer: it resolves.
   */
  async stillSignedIn(authorization: string | undefined): Promise<void> {
    const token = authorization === undefined ? null : tokenFromAuthorization(authorization);
    if (!token) throw new Unauthenticated();
    const session: Session | undefined | typeof NO_ANSWER = await this.lookups.add(digestToken(token)).catch(() => NO_ANSWER);
    if (session === NO_ANSWER) return;
    if (!session || !this.admit(session, token)) throw new Unauthenticated('Invalid token.');
  }

  /** The session an `Authorization` header authenticates. */
  async authenticate(authorization: string | undefined): Promise<AuthenticatedSession> {
    if (!authorization) throw new Unauthenticated();
    const token = tokenFromAuthorization(authorization);
    if (!token) throw new Unauthenticated('Invalid token header.');
    // The digest is looked up through a unique index: equality on a SHA-256 of the token leaks
    // nothing useful by its timing, unlike comparing the token itself.
    const digest = digestToken(token);
    const session = await this.cache.sessionOf(digest, () => this.lookups.add(digest));
    if (!session) throw new Unauthenticated('Invalid token.');
    const admitted = this.admit(session, token);
    if (!admitted) throw new Unauthenticated('Token expired.');
    return admitted;
  }

  /** The user's sessions, oldest first, in pages (those past their lifetime left out). */
  async list(userId: number, page: PageRequest, now = Date.now()): Promise<Page<SessionView>> {
    const { db, t } = this.store;
    const after = page.cursor ? decodeCursor(page.cursor, IdCursor) : undefined;
    const rows = await db
      .select({ id: t.authTokens.id, createdAt: t.authTokens.createdAt, lastUsedAt: t.authTokens.lastUsedAt, userAgent: t.authTokens.userAgent })
      .from(t.authTokens)
      .where(and(eq(t.authTokens.userId, userId), after && gt(t.authTokens.id, after.i), this.ttlMs === undefined ? undefined : gte(t.authTokens.lastUsedAt, new Date(now - this.ttlMs))))
      .orderBy(asc(t.authTokens.id))
      .limit(page.limit + 1);
    const views = rows.map((row) => {
      const lastUsedAt = row.lastUsedAt ?? row.createdAt;
      return { ...row, lastUsedAt, expiresAt: this.ttlMs === undefined ? null : new Date(lastUsedAt.getTime() + this.ttlMs) };
    });
    return pageOf(views, page.limit, (last) => ({ i: last.id }));
  }

  /** Ends one of the user's sessions, here and on every instance; another user's is not found. */
  async revoke(userId: number, tokenId: number): Promise<void> {
    const { db, t } = this.store;
    const deleted = await db
      .delete(t.authTokens)
      .where(and(eq(t.authTokens.id, tokenId), eq(t.authTokens.userId, userId)))
      .returning({ id: t.authTokens.id });
    if (deleted.length === 0) throw new NotFound();
    await this.cache.changed([userId]);
  }

  /** Ends the session of this request (logout); one that a concurrent request ended already is ended. */
  async logout({ user, tokenId }: AuthenticatedSession): Promise<void> {
    await this.revoke(user.id, tokenId).catch((error: unknown) => {
      if (!(error instanceof NotFound)) throw error;
    });
  }

  /** Ends every session of the user, this one included. */
  async revokeAll(userId: number): Promise<void> {
    const { db, t } = this.store;
    await db.delete(t.authTokens).where(eq(t.authTokens.userId, userId));
    await this.cache.changed([userId]);
  }

  /** Tells every instance that what it knows of these users' sessions is stale (new names, say). */
  usersChanged(userIds: number[]): Promise<void> {
    return this.cache.changed(userIds);
  }

  /** Deletes the tokens unused for longer than their lifetime; returns how many. */
  async purgeExpired(now = Date.now()): Promise<number> {
    if (this.ttlMs === undefined) return 0;
    const { db, t } = this.store;
    return rowsAffected(await db.delete(t.authTokens).where(lt(t.authTokens.lastUsedAt, new Date(now - this.ttlMs))));
  }

  /** The sessions of these digests (undefined for an unknown one): the lookups of one turn of the event loop. */
  private async loadBatch(digests: string[]): Promise<Array<Session | undefined>> {
    const rows =
      digests.length === 1
        ? await this.sessionByDigest.execute({ digest: digests[0] })
        : await sessionsQuery(this.store).where(this.store.anyOf(this.store.t.authTokens.digest, digests));
    const sessions = new Map(rows.map((row) => [row.digest, { user: withoutSecrets(row.user), tokenId: row.tokenId, lastUsedAt: (row.lastUsedAt ?? row.createdAt).getTime() }]));
    return digests.map((digest) => sessions.get(digest));
  }

  /** The request's session unless it has expired; notes its use (written once a minute at most). */
  private admit(session: Session, token: string, now = Date.now()): AuthenticatedSession | undefined {
    if (this.ttlMs !== undefined && now - session.lastUsedAt > this.ttlMs) return undefined;
    if (now - session.lastUsedAt >= LAST_USED_RESOLUTION_MS) this.recordUse(session, now);
    return { user: session.user, token, tokenId: session.tokenId };
  }

  /** Writes the use without making the request wait; the cached session shows it at once. */
  private recordUse(session: Session, now: number): void {
    session.lastUsedAt = now;
    this.uses.add({ tokenId: session.tokenId, at: now }).catch((error: unknown) =>
      this.logger.warn({ err: error, tokenId: session.tokenId }, 'could not record the use of a token'),
    );
  }

  /** The uses of one turn of the event loop, in one statement: each token's use is noted at the latest of them (they are within the turn). */
  private async writeUses(uses: TokenUse[]): Promise<void[]> {
    const { db, t } = this.store;
    const at = new Date(Math.max(...uses.map((use) => use.at)));
    await db
      .update(t.authTokens)
      .set({ lastUsedAt: at })
      .where(this.store.anyOf(t.authTokens.id, uses.map((use) => use.tokenId)));
    return uses.map(() => undefined);
  }
}

interface TokenUse {
  tokenId: number;
  at: number;
}
