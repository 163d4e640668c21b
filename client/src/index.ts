// The typed client, derived from the same contract as the server: every path, body and response
// status is known to the compiler. Answers are `{ status, body, headers }`; errors are answers too.
import { initClient } from '@ts-rest/core';
import { contract } from '../../contract';

export interface ClientOptions {
  /** Where the API is served, e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** The `auth_token` from login; sent as `Authorization: Token <token>`. */
  token?: string;
}

export function createPunchclockClient({ baseUrl, token }: ClientOptions) {
  return initClient(contract, {
    baseUrl: baseUrl.replace(/\/+$/, ''),
    baseHeaders: token ? { Authorization: `Token ${token}` } : {},
    throwOnUnknownStatus: true,
  });
}

export type PunchclockClient = ReturnType<typeof createPunchclockClient>;
export { contract };
