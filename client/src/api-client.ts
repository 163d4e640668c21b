import { initClient, type ApiFetcher } from '@ts-rest/core';
import { contract } from '../../contract';
import { ConditionalGets } from './conditional-gets';
import { UnauthorizedError } from './errors';
import type { StreamOpener } from './notifications/event-stream';

export interface ClientOptions {
  /** Where the API is served, e.g. `https://punchclock.example.com`. */
  baseUrl: string;
  /** The `auth_token` from login; sent as `Authorization: Token <token>`. */
  token?: string;
  /** The fetch to use (default: the global one), e.g. one that adds tracing headers. */
  fetch?: typeof fetch;
}

/**
 * Every route of the contract, typed: answers are `{ status, body, headers }`, errors included,
 * except a 401, which throws UnauthorizedError (the one answer every app handles the same way: the
 * token is gone, log out).
 */
export function createApiClient({ baseUrl, token, fetch: fetchImpl }: ClientOptions) {
  return encodingPathParams(
    initClient(contract, {
      baseUrl: withoutTrailingSlash(baseUrl),
      baseHeaders: authorization(token),
      throwOnUnknownStatus: true,
      api: fetcherOf(fetchImpl),
    }),
  );
}

export type ApiClient = ReturnType<typeof createApiClient>;

/**
 * How the requests that wait for notifications (long-polls, the stream) go: past the browser's HTTP
 * cache. Chrome holds back a GET of a URL another tab is already fetching until that one is answered
 * (its cache lock), so the same long-poll from two tabs that do not share one connection ran one
 * after the other, the second a whole poll late.
 */
export const WAITING_REQUEST_CACHE: RequestCache = 'no-store';

/** Opens the notification stream, which the typed client cannot read as it comes. */
export function createStreamOpener({ baseUrl, token, fetch: fetchImpl }: ClientOptions): StreamOpener {
  const url = `${withoutTrailingSlash(baseUrl)}${contract.notifications.sse.path}`;
  return (lastEventId, signal) => {
    const send = fetchImpl ?? globalThis.fetch;
    const resume: Record<string, string> = lastEventId ? { 'Last-Event-ID': lastEventId } : {};
    return send(url, { headers: { Accept: 'text/event-stream', ...authorization(token), ...resume }, signal, cache: WAITING_REQUEST_CACHE });
  };
}

/**
 * The same routes, with their path parameters percent-encoded: ts-rest puts them in the path as they
 * are, and a key holding `/`, `?` or `#` (`x/../other`) then named another object or route.
 */
function encodingPathParams<Routes extends object>(routes: Routes): Routes {
  const encoded = (params: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(params).map(([name, value]) => [name, typeof value === 'string' ? encodeURIComponent(value) : value]));
  return Object.fromEntries(
    Object.entries(routes).map(([name, route]) => [
      name,
      typeof route === 'function'
        ? (args?: { params?: Record<string, unknown> }) => route(args?.params ? { ...args, params: encoded(args.params) } : args)
        : encodingPathParams(route),
    ]),
  ) as Routes;
}

const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, '');
const authorization = (token: string | undefined): Record<string, string> => (token ? { Authorization: `Token ${token}` } : {});

/** The GETs asked again and again, whose answers are kept and revalidated with their ETag. */
const REVALIDATED = new Set<string>([contract.featureFlags.check.path, contract.featureFlags.myFeatures.path]);

function fetcherOf(fetchImpl: typeof fetch | undefined): ApiFetcher {
  const conditionalGets = new ConditionalGets();
  return async ({ route, path, method, headers, body, fetchOptions }) => {
    const revalidated = method === 'GET' && REVALIDATED.has(route.path);
    const kept = revalidated ? conditionalGets.answerOf(path) : undefined;
    const condition: Record<string, string> = kept ? { 'If-None-Match': kept.etag } : {};
    // Called unbound: a browser's fetch refuses to run as a method of another object.
    const send = fetchImpl ?? globalThis.fetch;
    const response = await send(path, { ...fetchOptions, method, headers: { ...headers, ...condition }, body });
    if (response.status === 304 && kept) return { status: 200, headers: response.headers, body: kept.body };
    const answer = { status: response.status, headers: response.headers, body: await bodyOf(response) };
    if (response.status === 401) throw new UnauthorizedError(detailOf(answer.body));
    const etag = response.headers.get('etag');
    if (revalidated && response.status === 200 && etag) conditionalGets.keep(path, etag, answer.body);
    return answer;
  };
}

async function bodyOf(response: Response): Promise<unknown> {
  const type = response.headers.get('content-type') ?? '';
  if (/\bjson\b/.test(type)) return response.json();
  const text = await response.text();
  return text === '' ? undefined : text;
}

export const detailOf = (body: unknown): string =>
  typeof body === 'object' && body !== null && typeof (body as { detail?: unknown }).detail === 'string'
    ? (body as { detail: string }).detail
    : 'Unauthorized';
