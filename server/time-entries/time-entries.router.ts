import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import { currentUser } from '../auth/authenticate';
import { pageUrl } from '../pagination/link-header';
import type { TimeEntriesService } from './time-entries.service';
import { serializeIdleRecorded, serializeTimeEntry } from './time-entry.serializer';

const s = initServer();

/** The request's own URL with another cursor, absolute (the list's `next` and `previous`). */
const urlWithCursor = (req: { protocol: string; originalUrl: string; get(name: string): string | undefined }, cursor: string | null) => cursor && pageUrl(`${req.protocol}://${req.get('host')}${req.originalUrl}`, cursor);

export const timeEntriesRouter = (timeEntries: TimeEntriesService) =>
  s.router(contract.timeEntries, {
    list: async ({ query, req }) => {
      const page = await timeEntries.list(currentUser(req), query);
      return {
        status: 200,
        body: {
          count: page.count,
          next: urlWithCursor(req, page.nextCursor),
          previous: urlWithCursor(req, page.previousCursor),
          results: page.items.map((view) => serializeTimeEntry(view)),
        },
      };
    },
    start: async ({ body, req }) => ({ status: 201, body: serializeTimeEntry(await timeEntries.start(currentUser(req), body)) }),
    currentActive: async ({ req }) => ({ status: 200, body: serializeTimeEntry(await timeEntries.currentActive(currentUser(req))) }),
    get: async ({ params, req }) => ({ status: 200, body: serializeTimeEntry(await timeEntries.get(currentUser(req), params.id)) }),
    update: async ({ params, body, req }) => ({
      status: 200,
      body: serializeTimeEntry(await timeEntries.update(currentUser(req), params.id, body)),
    }),
    remove: async ({ params, req }) => {
      await timeEntries.remove(currentUser(req).id, params.id);
      return { status: 204, body: undefined };
    },
    stop: async ({ params, req }) => ({ status: 200, body: serializeTimeEntry(await timeEntries.stop(currentUser(req), params.id)) }),
    addIdle: async ({ params, body, req }) => {
      const { entry, now } = await timeEntries.addIdle(currentUser(req), params.id, body);
      return { status: 201, body: serializeIdleRecorded(entry, now) };
    },
  });
