import { pipeline, Readable } from 'node:stream';
import { initServer } from '@ts-rest/express';
import { stringify } from 'csv-stringify';
import { contract } from '../../contract';
import { currentUser } from '../auth/authenticate';
import { absolutePageUrl, type RequestUrl } from '../pagination/link-header';
import type { TimeEntriesService } from './time-entries.service';
import type { TimeEntryReports } from './time-entry-reports';
import { CSV_COLUMNS, csvRecordOf, serializeIdleRecorded, serializeSummary, serializeTimeEntry } from './time-entry.serializer';

const s = initServer();

/** The request's own URL with another cursor, absolute (the list's `next` and `previous`). */
const urlWithCursor = (req: RequestUrl, cursor: string | null) => cursor && absolutePageUrl(req, cursor);

export const timeEntriesRouter = (timeEntries: TimeEntriesService, reports: TimeEntryReports) =>
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
    summary: async ({ query: { group_by, ...filters }, req }) => ({
      status: 200,
      body: serializeSummary(await reports.summary(currentUser(req), filters, group_by)),
    }),
    export: async ({ query, req, res }) => {
      const views = reports.exportViews(currentUser(req), query);
      // Reads the first batch now, so that a refusal (a project filter the user may not use) is
      // still an ordinary error answer rather than a broken stream.
      const first = await views.next();
      const records = async function* () {
        if (first.done) return;
        yield csvRecordOf(first.value);
        for await (const view of views) yield csvRecordOf(view);
      };
      // A failure half-way (the database went away) can only cut the download short. A pipeline,
      // not pipe(): pipe() leaves an error of the records' stream unhandled, which ends the process.
      const csv = pipeline(
        Readable.from(records()),
        stringify({ header: true, columns: [...CSV_COLUMNS], escape_formulas: true, cast: { boolean: String } }),
        (error) => {
          if (!error) return;
          req.log.error({ err: error }, 'CSV export failed');
          res.destroy(error);
        },
      );
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      res.setHeader('Content-Disposition', 'attachment; filename="time-entries.csv"');
      return { status: 200, body: csv };
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
    restart: async ({ params, req }) => ({
      status: 201,
      body: serializeTimeEntry(await timeEntries.restart(currentUser(req), params.id)),
    }),
    stop: async ({ params, req }) => ({ status: 200, body: serializeTimeEntry(await timeEntries.stop(currentUser(req), params.id)) }),
    addIdle: async ({ params, body, req }) => {
      const { entry, now } = await timeEntries.addIdle(currentUser(req), params.id, body);
      return { status: 201, body: serializeIdleRecorded(entry, now) };
    },
  });
