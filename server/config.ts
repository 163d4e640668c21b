import proxyaddr from 'proxy-addr';
import type { RedisTarget } from './realtime/redis-target';
import { OWNERSHIP_CAPS, type OwnershipCaps } from './limits/ownership-caps';

/** Everything the server reads from its environment, with defaults that serve a laptop. */
export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /** REDIS_URL, or REDIS_SENTINELS + REDIS_SENTINEL_NAME; undefined: one process, in-memory bus. */
  redis: RedisTarget | undefined;
  adminUsername: string | undefined;
  adminPassword: string | undefined;
  logLevel: string;
  corsOrigins: string[];
  rateLimits: boolean;
  /** express's `trust proxy`: how many proxies, or which, may say who the client is; undefined: none. */
  trustProxy: TrustProxy | undefined;
  ownershipCaps: OwnershipCaps;
  /** METRICS_PORT: GET /metrics on a port of its own (not the API's). */
  metricsPort: number | undefined;
  /** METRICS_TOKEN: GET /metrics on the API's port, for `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** TOKEN_TTL_DAYS: a token unused for this many days is refused (sliding expiry); unset: tokens never expire. */
  tokenTtlDays: number | undefined;
}

export type TrustProxy = number | string[];

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    port: parsePort('PORT', env.PORT) ?? 8000,
    host: env.HOST || '127.0.0.1',
    databaseUrl: env.DATABASE_URL || undefined,
    redis: parseRedisTarget(env),
    adminUsername: env.ADMIN_USERNAME || undefined,
    adminPassword: env.ADMIN_PASSWORD || undefined,
    logLevel: parseLogLevel(env.LOG_LEVEL),
    corsOrigins: (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
    rateLimits: (env.RATE_LIMITS ?? 'on').toLowerCase() !== 'off',
    trustProxy: parseTrustProxy(env.TRUST_PROXY ?? ''),
    metricsPort: parsePort('METRICS_PORT', env.METRICS_PORT),
    metricsToken: parseMetricsToken(env.METRICS_TOKEN),
    tokenTtlDays: parseTokenTtlDays(env.TOKEN_TTL_DAYS),
    ownershipCaps: {
      projectsPerUser: parseCap('PROJECTS_PER_USER', env.PROJECTS_PER_USER, OWNERSHIP_CAPS.projectsPerUser),
      tagsPerUser: parseCap('TAGS_PER_USER', env.TAGS_PER_USER, OWNERSHIP_CAPS.tagsPerUser),
      invitationsPerProject: parseCap('INVITATIONS_PER_PROJECT', env.INVITATIONS_PER_PROJECT, OWNERSHIP_CAPS.invitationsPerProject),
    },
  };
}

/**
 * TRUST_PROXY: a hop count (`1` behind one load balancer) or the proxies' addresses and subnets,
 * comma-separated (`10.0.0.0/8, loopback`, as express takes them). Unset: the socket's address is the
 * client's, and an X-Forwarded-For from the open internet is ignored. `true` (trust any hop) is
 * refused: it would let every client choose the address its limits are counted by.
 */
function parseTrustProxy(value: string): TrustProxy | undefined {
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  if (/^(true|false)$/i.test(trimmed)) {
    throw new Error('TRUST_PROXY must be a hop count or the proxies\' addresses, not true or false');
  }
  const proxies = trimmed.split(',').map((entry) => entry.trim()).filter(Boolean);
  try {
    // What express's `trust proxy` will do with them: proxy-addr's own check, named here.
    proxyaddr.compile(proxies);
  } catch (error) {
    throw new Error(`TRUST_PROXY must be a hop count or the proxies' addresses, subnets or names (loopback, linklocal, uniquelocal): ${(error as Error).message}`);
  }
  return proxies;
}

function parseCap(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const cap = Number(value);
  if (!Number.isInteger(cap) || cap < 1) throw new Error(`${name} must be a whole number of at least 1, got "${value}"`);
  return cap;
}

/** REDIS_URL, or Sentinel: REDIS_SENTINELS=host:port,… and REDIS_SENTINEL_NAME (the master's name). */
function parseRedisTarget(env: NodeJS.ProcessEnv): RedisTarget | undefined {
  const sentinels = (env.REDIS_SENTINELS ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  if (sentinels.length === 0) return env.REDIS_URL || undefined;
  if (env.REDIS_URL) throw new Error('Set REDIS_URL or REDIS_SENTINELS, not both');
  const name = env.REDIS_SENTINEL_NAME?.trim();
  if (!name) throw new Error('REDIS_SENTINELS needs REDIS_SENTINEL_NAME: the name of the master the sentinels watch');
  return {
    name,
    sentinels: sentinels.map((entry) => {
      const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(entry);
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) throw new Error(`REDIS_SENTINELS takes host:port entries, got "${entry}"`);
      return { host: match[1].replace(/^\[|\]$/g, ''), port };
    }),
  };
}

/** Days, a fraction allowed (0.5: twelve hours); at most ten years. */
function parseTokenTtlDays(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const days = Number(value);
  if (!Number.isFinite(days) || days <= 0 || days > 3650) throw new Error(`TOKEN_TTL_DAYS must be a number of days above 0 (at most 3650), got "${value}"`);
  return days;
}

/** A port number (0: any free one); unset or empty: undefined, as for every other variable. */
function parsePort(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name} must be 0..65535, got "${value}"`);
  return port;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** pino's level; named here, for pino's own error does not say which variable it came from. */
function parseLogLevel(value: string | undefined): string {
  if (!value) return 'info';
  if (!LOG_LEVELS.includes(value)) throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value;
}

/** A bearer token for the metrics: long enough that it cannot be guessed (unset: none). */
function parseMetricsToken(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.length < 16) throw new Error('METRICS_TOKEN must be at least 16 characters');
  return value;
}
