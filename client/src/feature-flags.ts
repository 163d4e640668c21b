import type { ApiClient } from './api-client';

/** Feature flags as an app asks about them. */
export function featureFlagHelpers(api: ApiClient) {
  return {
    /**
     * Whether the flag is on for this user: switched on, granted to them, and their rollout bucket
     * in. An unknown flag is off. Asked again, the server answers 304 to the ETag it gave while
     * nothing changed (the client keeps the last answer of each flag).
     */
    async isEnabled(key: string): Promise<boolean> {
      const answer = await api.featureFlags.check({ params: { feature_key: key } });
      return answer.status === 200 && answer.body.is_enabled;
    },
  };
}
