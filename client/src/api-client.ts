import { initClient, type ApiFetcher } from '@ts-rest/core';
import { contract } from '../../contract';
import { UnauthorizedError } from './errors';

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
  return initClient(contract, {
    baseUrl: baseUrl.replace(/\/+$/, ''),
    baseHeaders: token ? { Authorization: `Token ${token}` } : {},
    throwOnUnknownStatus: true,
    api: fetcherOf(fetchImpl),
  });
}

export type ApiClient = ReturnType<typeof createApiClient>;

function fetcherOf(fetchImpl: typeof fetch | undefined): ApiFetcher {
  return async ({ path, method, headers, body, fetchOptions }) => {
    // Called unbound: a browser's fetch refuses to run as a method of another object.
    const send = fetchImpl ?? globalThis.fetch;
    const response = await send(path, { ...fetchOptions, method, headers, body });
    const answer = { status: response.status, headers: response.headers, body: await bodyOf(response) };
    if (response.status === 401) throw new UnauthorizedError(detailOf(answer.body));
    return answer;
  };
}

async function bodyOf(response: Response): Promise<unknown> {
  const type = response.headers.get('content-type') ?? '';
  if (/\bjson\b/.test(type)) return response.json();
  const text = await response.text();
  return text === '' ? undefined : text;
}

const detailOf = (body: unknown): string =>
  typeof body === 'object' && body !== null && typeof (body as { detail?: unknown }).detail === 'string'
    ? (body as { detail: string }).detail
    : 'Unauthorized';
