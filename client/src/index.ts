// @punchclock/client: the typed client of the Punchclock API and the notification subscription.
// Everything is derived from the same contract as the server, which travels inside the package.
import { contract } from '../../contract';
import { createApiClient, createStreamOpener, type ClientOptions } from './api-client';
import { subscribeToNotifications, type SubscribeOptions } from './notifications/subscribe';

/**
 * The client: every route of the contract grouped by domain (`client.projects.list()`,
 * `client.notifications.acknowledge({ params: { id } })`), and `client.notifications.subscribe()`,
 * which delivers the user's notifications as they come.
 */
export function createClient(options: ClientOptions) {
  const api = createApiClient(options);
  const openStream = createStreamOpener(options);
  return {
    ...api,
    notifications: {
      ...api.notifications,
      subscribe: (subscribeOptions: SubscribeOptions) => subscribeToNotifications(api, openStream, subscribeOptions),
    },
  };
}

/** The name of the first releases. */
export const createPunchclockClient = createClient;

export type PunchclockClient = ReturnType<typeof createClient>;
export type { ClientOptions } from './api-client';
export { UnauthorizedError, UnexpectedAnswerError } from './errors';
export type { DeliveryMode, Notification, SubscribeOptions, Subscription, Transport } from './notifications/subscribe';
export { contract };
