import { initContract } from '@ts-rest/core';
import { authContract } from './auth';
import { featureFlagsContract } from './feature-flags';
import { healthContract } from './health';
import { invitationsContract } from './invitations';
import { notificationsContract } from './notifications';
import { projectsContract } from './projects';
import { tagsContract } from './tags';
import { timeEntriesContract } from './time-entries';

export * from './common';
export * from './auth';
export * from './feature-flags';
export * from './health';
export * from './invitations';
export * from './notifications';
export * from './projects';
export * from './tags';
export * from './time-entries';

const c = initContract();

/** Every endpoint of the API: the server, openapi.json and the client SDK all derive from it. */
export const contract = c.router(
  {
    auth: authContract,
    projects: projectsContract,
    invitations: invitationsContract,
    tags: tagsContract,
    timeEntries: timeEntriesContract,
    notifications: notificationsContract,
    featureFlags: featureFlagsContract,
    health: healthContract,
  },
  { strictStatusCodes: true },
);

export type Contract = typeof contract;
