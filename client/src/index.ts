// @punchclock/client: the typed client of the Punchclock API and the notification subscription.
// Everything is derived from the same contract as the server, which travels inside the package.
import { contract } from '../../contract';
import { createApiClient, createStreamOpener, type ClientOptions } from './api-client';
import { featureFlagHelpers } from './feature-flags';
import { canShareAcrossTabs, shareAcrossTabs } from './notifications/shared-across-tabs';
import { subscribeToNotifications, type SubscribeOptions, type Subscription } from './notifications/subscribe';
import { timeEntryHelpers } from './time-entries';

/**
 * The client: every route of the contract grouped by domain (`client.projects.list()`,
 * `client.notifications.acknowledge({ params: { id } })`), `client.notifications.subscribe()`, which
 * delivers the user's notifications as they come, `client.featureFlags.isEnabled(key)`, and the
 * time-entry helpers `startTimer`, `stopTimer` and `allEntries`.
 */
export function createClient(options: ClientOptions) {
  const api = createApiClient(options);
  const openStream = createStreamOpener(options);
  const subscribeHere = (subscribeOptions: SubscribeOptions) => subscribeToNotifications(api, openStream, subscribeOptions);
  const subscribe = (subscribeOptions: SubscribeOptions): Subscription =>
    subscribeOptions.shareAcrossTabs !== false && canShareAcrossTabs()
      ? shareAcrossTabs(api, userKeyOf(options), subscribeOptions, subscribeHere)
      : subscribeHere(subscribeOptions);
  return {
    ...api,
    notifications: { ...api.notifications, subscribe },
    featureFlags: { ...api.featureFlags, ...featureFlagHelpers(api) },
    timeEntries: { ...api.timeEntries, ...timeEntryHelpers(api) },
  };
}

/**
 * Names the tabs' shared lock and channel for one server and user, without putting the token itself
 * in them (FNV-1a: a name, not a secret).
 */
function userKeyOf({ baseUrl, token = '' }: ClientOptions): string {
  let hash = 0x811c9dc5;
  for (const char of `${baseUrl} ${token}`) hash = Math.imul(hash ^ char.codePointAt(0)!, 0x01000193) >>> 0;
  return hash.toString(36);
}

/** The name of the first releases. */
export const createPunchclockClient = createClient;

export type PunchclockClient = ReturnType<typeof createClient>;
export type { ClientOptions } from './api-client';
export { UnauthorizedError, UnexpectedAnswerError } from './errors';
export type { DeliveryMode, Notification, SubscribeOptions, Subscription, Transport } from './notifications/subscribe';
export type { TimeEntry, TimeEntryFilters } from './time-entries';
export { contract };
