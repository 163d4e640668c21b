import { createExpressEndpoints, initServer } from '@ts-rest/express';
import cors from 'cors';
import express, { type Express } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { contract } from '../contract';
import type { Store } from '../db/open-database';
import { authRouter } from './auth/auth.router';
import { AuthService } from './auth/auth.service';
import { authenticate } from './auth/authenticate';
import { featureFlagsRouter } from './feature-flags/feature-flags.router';
import { FeatureFlagsService } from './feature-flags/feature-flags.service';
import { FlagCache, type FlagCacheOptions } from './feature-flags/flag-cache';
import { LoginThrottle } from './auth/login-throttle';
import { RegistrationLimit, type RegistrationLimitSettings } from './auth/registration-limit';
import { SessionCache, type SessionCacheOptions } from './auth/session-cache';
import { SessionsService } from './auth/sessions.service';
import { checkAnswersAgainstContract } from './http/answer-check';
import { errorHandler, notFoundHandler } from './http/error-handler';
import { parseJsonBody, refuseNullCharacters, requireJsonBody } from './http/json-body';
import { healthRouter } from './health/health.router';
import { HealthService } from './health/health.service';
import { answerConditionalGets } from './http/conditional-get';
import { methodNotAllowed } from './http/method-not-allowed';
import { REQUEST_DEADLINE_MS, RequestDeadline, ROUTES_THAT_WAIT } from './http/request-deadline';
import { RouteTable } from './http/route-table';
import { leanRoutes, type LeanRoute } from './http/lean-route';
import { leanContractGet } from './http/lean-contract-get';
import { serveBeforeExpress } from './http/serve-before-express';
import { securityHeaders } from './http/security-headers';
import { OWNERSHIP_CAPS, type OwnershipCaps } from './limits/ownership-caps';
import { useRequestLogging } from './http/request-logging';
import { WRITE_LIMIT, writeLimit, type WriteLimit } from './http/write-limit';
import { IdempotencyService } from './idempotency/idempotency.service';
import { DeliveryClaims, type DeliveryClaimsOptions } from './notifications/delivery-claims';
import { notificationLeanRoutes } from './notifications/lean-routes';
import { Metrics } from './metrics/metrics';
import { countRequest, metricsBehindToken } from './metrics/metrics-http';
import { LongPoll } from './notifications/long-poll';
import { notificationsRouter, servedNotificationsContract } from './notifications/notifications.router';
import { NotificationsService } from './notifications/notifications.service';
import { sseHandler, type SseOptions } from './notifications/sse';
import { serveDocs } from './openapi/docs';
import { invitationsRouter } from './invitations/invitations.router';
import { InvitationsService } from './invitations/invitations.service';
import { projectsRouter } from './projects/projects.router';
import { ProjectsService } from './projects/projects.service';
import { tagsRouter } from './tags/tags.router';
import { TagsService } from './tags/tags.service';
import { timeEntriesRouter } from './time-entries/time-entries.router';
import { TimeEntriesService } from './time-entries/time-entries.service';
import { TimeEntryReports } from './time-entries/time-entry-reports';
import { LongTimerWarnings } from './time-entries/long-timer-warnings';
import type { TrustProxy } from './config';
import { InMemoryBus, type InstanceBus } from './realtime/bus';
import { DeliveryHub, type DeliveryHubOptions } from './realtime/delivery-hub';

export interface AppDependencies {
  store: Store;
  logger: Logger;
  /** RATE_LIMITS=off turns every request-rate limit off (load tests). */
  rateLimits: boolean;
  corsOrigins?: string[];
  /** express's `trust proxy` (TRUST_PROXY): who may say, in X-Forwarded-For, which address the client has. */
  trustProxy?: TrustProxy;
  /** Carries notification wake-ups and feature-flag changes to every instance; in-memory (one process) unless given, e.g. Redis. */
  bus?: InstanceBus;
  /** Where state shared by all instances lives (login failure counts); in-process when absent. */
  redis?: Redis;
  /** Overrides of the real-time defaults (tests shorten the heartbeat, say). */
  realtime?: Partial<RealtimeOptions>;
  /** Overrides of the feature-flag cache's lifetime and size (tests shorten the lifetime). */
  flagCache?: FlagCacheOptions;
  /** Overrides of the token cache's lifetime and size. */
  sessionCache?: SessionCacheOptions;
  /** TOKEN_TTL_DAYS in ms: a token unused for this long is refused (sliding expiry); unset: tokens never expire. */
  tokenTtlMs?: number;
  /**
   * Check every answer against the contract, failing those that do not match it exactly (see
   * http/answer-check.ts). On unless turned off: the server (main.ts) and the benchmarks turn it
   * off, so that every test app checks.
   */
  checkAnswers?: boolean;
  /**
   * Serve the real-time routes' plain requests before express (http/lean-route.ts). On unless
   * turned off: a test turns it off to compare the two paths' answers.
   */
  leanRoutes?: boolean;
  /** METRICS_TOKEN: serve GET /metrics on this app to a scraper with this bearer token. */
  metricsToken?: string;
  /** Whether the metrics are served at all (on METRICS_PORT or behind METRICS_TOKEN): then process metrics are collected too. */
  metricsServed?: boolean;
  /** How long a request may take before it is answered 503 (long-polls and streams excepted). */
  requestDeadlineMs?: number;
  /** How many projects and tags one user may own (PROJECTS_PER_USER, TAGS_PER_USER). */
  ownershipCaps?: OwnershipCaps;
  /** Override of REGISTRATION_LIMIT (tests that register many users over HTTP raise it). */
  registrationLimit?: RegistrationLimitSettings;
  /** Override of WRITE_LIMIT (tests lower it). */
  writeLimit?: WriteLimit;
}

export type RealtimeOptions = Omit<DeliveryHubOptions, 'logger'> & SseOptions & DeliveryClaimsOptions;

export const REALTIME_DEFAULTS: RealtimeOptions = {
  maxConnectionsPerUser: 6,
  fallbackPollMs: 3000,
  heartbeatMs: 15_000,
  retryMs: 3000,
  // Room for a few whole batches of the bulkiest events (100 × 2,000 escaped characters ≈ 1.2 MB).
  maxBufferedBytes: 4 * 1024 * 1024,
  // The long-poll's default timeout: a poll that waited it out reads again.
  quietMs: 30_000,
};

export interface Services {
  auth: AuthService;
  sessions: SessionsService;
  projects: ProjectsService;
  invitations: InvitationsService;
  tags: TagsService;
  timeEntries: TimeEntriesService;
  timeEntryReports: TimeEntryReports;
  /** Started by the process (server/main.ts), not by the app: tests sweep by hand. */
  longTimers: LongTimerWarnings;
  notifications: NotificationsService;
  featureFlags: FeatureFlagsService;
  idempotency: IdempotencyService;
  hub: DeliveryHub;
  health: HealthService;
  claims: DeliveryClaims;
  longPoll: LongPoll;
  realtime: RealtimeOptions;
  metrics: Metrics;
}

export function createServices({ store, logger, rateLimits, bus = new InMemoryBus(), redis, realtime, flagCache, sessionCache, tokenTtlMs, registrationLimit, ownershipCaps = OWNERSHIP_CAPS, metricsToken, metricsServed }: AppDependencies): Services {
  const options = { ...REALTIME_DEFAULTS, ...realtime };
  const processMetrics = metricsServed ?? metricsToken !== undefined;
  const metrics: Metrics = new Metrics({ connections: (): number => hub.stats().connections, bus, pool: store.poolStats, processMetrics });
  const notifications = new NotificationsService(store, bus, metrics);
  const hub = new DeliveryHub(bus, (userIds) => notifications.usersWithUndelivered(userIds), { ...options, logger });
  const claims = new DeliveryClaims(notifications, hub, options);
  const projects = new ProjectsService(store, ownershipCaps.projectsPerUser);
  const sessions = new SessionsService(store, new SessionCache(bus, sessionCache), { ttlMs: tokenTtlMs, logger });
  const auth = new AuthService(store, new LoginThrottle(rateLimits, redis), sessions, new RegistrationLimit(rateLimits, redis, registrationLimit));
  return {
    auth,
    sessions,
    projects,
    invitations: new InvitationsService(store, projects, auth, notifications, ownershipCaps.invitationsPerProject),
    tags: new TagsService(store, ownershipCaps.tagsPerUser),
    timeEntries: new TimeEntriesService(store, projects),
    timeEntryReports: new TimeEntryReports(store, projects),
    longTimers: new LongTimerWarnings(store, notifications, logger),
    notifications,
    featureFlags: new FeatureFlagsService(store, new FlagCache(bus, flagCache)),
    idempotency: new IdempotencyService(store, logger),
    hub,
    health: new HealthService(store, bus),
    claims,
    longPoll: new LongPoll(claims, hub),
    realtime: options,
    metrics,
  };
}

/**
 * CORS for the allowed origins only. The origin is decided by a function, because with a list
 * `cors` treats every OPTIONS as a preflight (answering 204 without Allow, even for unknown paths,
 * and sending its headers to any origin); a function answering false makes it step aside, so other
 * requests go on to the routes, the 405 handler and the 404.
 */
function corsFor(origins: string[]) {
  const allowed = new Set(origins);
  return cors({
    origin: (origin, decide) => decide(null, origin !== undefined && allowed.has(origin)),
    // ETag: the SDK keeps a flag's answer and asks again with it (If-None-Match), which a script of
    // another origin can do only if it may read the tag.
    exposedHeaders: ['X-Request-Id', 'Link', 'Retry-After', 'ETag'],
  });
}

/** The HTTP app: no port, no process concerns, so tests drive it with supertest. */
export function createApp(deps: AppDependencies, services: Services = createServices(deps)): Express {
  const app = express();
  app.disable('x-powered-by');
  if (deps.trustProxy !== undefined) app.set('trust proxy', deps.trustProxy);
  answerConditionalGets(app);
  const deadline = new RequestDeadline(deps.requestDeadlineMs ?? REQUEST_DEADLINE_MS, ROUTES_THAT_WAIT);
  const track = useRequestLogging(app, deps.logger, [countRequest(services.metrics), deadline.settle]);
  app.use(deadline.start);
  const security = securityHeaders();
  app.use(security);
  if (deps.metricsToken) app.use(metricsBehindToken(services.metrics, deps.metricsToken));
  const checkAnswers = deps.checkAnswers ?? true;
  if (checkAnswers) app.use(checkAnswersAgainstContract);
  const crossOrigin = deps.corsOrigins?.length ? corsFor(deps.corsOrigins) : undefined;
  if (crossOrigin) app.use(crossOrigin);
  serveDocs(app);

  const authenticated = authenticate(services.sessions);
  const routes = new RouteTable();
  routes.get(
    contract.notifications.sse.path,
    authenticated,
    sseHandler(services),
  );
  const served = { ...contract, notifications: servedNotificationsContract };
  const handlers = contractHandlers(services);
  const s = initServer();
  createExpressEndpoints(
    served,
    s.router(served, handlers),
    routes as unknown as Express,
    {
      globalMiddleware: [
        // The body is read only once the token (and an admin route's admin) was found good: a caller
        // refused learns only that, whatever it sent.
        authenticated,
        requireJsonBody,
        parseJsonBody(),
        refuseNullCharacters,
        ...(deps.rateLimits ? [writeLimit(deps.writeLimit ?? WRITE_LIMIT, deps.redis)] : []),
      ],
      // Answers are not validated while serving: see checkAnswers.
      responseValidation: false,
      // Validation errors go to errorHandler with every other error.
      requestValidationErrorHandler: (error, _req, _res, next) => next(error),
    },
  );
  app.use(routes.middleware());

  app.use(methodNotAllowed(contract, authenticated));
  app.use(notFoundHandler);
  app.use(errorHandler);

  if (deps.leanRoutes ?? true) {
    const headers = crossOrigin ? [security, crossOrigin] : [security];
    const routes = [...notificationLeanRoutes({ ...services, checkAnswers }), ...hotReads(handlers, checkAnswers)];
    serveBeforeExpress(app, leanRoutes({ sessions: services.sessions, logger: deps.logger, track, headers, deadline }, routes));
  }
  return app;
}

/** The contract's handlers by domain: ts-rest serves them through express, and the hot reads also before it. */
function contractHandlers(services: Services) {
  return {
    auth: authRouter(services.auth, services.sessions),
    projects: projectsRouter(services.projects),
    invitations: invitationsRouter(services.invitations),
    tags: tagsRouter(services.tags),
    timeEntries: timeEntriesRouter(services.timeEntries, services.timeEntryReports),
    notifications: notificationsRouter(services),
    featureFlags: featureFlagsRouter(services.featureFlags),
    health: healthRouter(services.health),
  };
}

/**
 * The small reads clients repeat most (who am I, my flags, a flag, my running timer, my unread
 * count), served before express by their own handlers (http/lean-contract-get.ts).
 */
function hotReads(handlers: ReturnType<typeof contractHandlers>, checkAnswers: boolean): LeanRoute[] {
  return [
    leanContractGet(contract.auth.me, handlers.auth.me, checkAnswers),
    leanContractGet(contract.featureFlags.myFeatures, handlers.featureFlags.myFeatures, checkAnswers),
    leanContractGet(contract.featureFlags.check, handlers.featureFlags.check, checkAnswers),
    leanContractGet(contract.timeEntries.currentActive, handlers.timeEntries.currentActive, checkAnswers),
    leanContractGet(contract.notifications.unreadCount, handlers.notifications.unreadCount, checkAnswers),
  ] as LeanRoute[];
}
