import { initContract } from '@ts-rest/core';
import { createExpressEndpoints, initServer } from '@ts-rest/express';
import express from 'express';
import { pino } from 'pino';
import supertest from 'supertest';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkAnswersAgainstContract } from '../server/http/answer-check';
import { errorHandler } from '../server/http/error-handler';
import { useRequestLogging } from '../server/http/request-logging';

const c = initContract();
const Thing = z.object({ id: z.number(), name: z.string(), tags: z.array(z.string()).default([]) });
const contract = c.router({
  thing: { method: 'GET', path: '/thing/:variant', responses: { 200: Thing, 404: z.object({ detail: z.string() }) }, summary: 'a thing' },
});

/** What each variant's handler answers: only the first is exactly the contract's. */
const answers: Record<string, { status: 200 | 404; body: unknown }> = {
  exact: { status: 200, body: { id: 1, name: 'one', tags: [] } },
  'extra key': { status: 200, body: { id: 1, name: 'one', tags: [], secret: 'hash' } },
  'other order': { status: 200, body: { name: 'one', id: 1, tags: [] } },
  'default left to the schema': { status: 200, body: { id: 1, name: 'one' } },
  'wrong type': { status: 200, body: { id: '1', name: 'one', tags: [] } },
  'not found': { status: 404, body: { detail: 'Not found.' } },
  'not found, off its shape': { status: 404, body: { error: 'Not found.' } },
};

function appWithCheck() {
  const app = express();
  useRequestLogging(app, pino({ level: 'silent' }));
  app.use(checkAnswersAgainstContract);
  const s = initServer();
  createExpressEndpoints(
    contract,
    s.router(contract, { thing: async ({ params }) => answers[params.variant] as never }),
    app,
    { responseValidation: false, requestValidationErrorHandler: (error, _req, _res, next) => next(error) },
  );
  app.use(errorHandler);
  return supertest(app);
}

describe('answers checked against the contract (every test app)', () => {
  it('lets through an answer that is exactly the contract’s, and any declared status that matches', async () => {
    const http = appWithCheck();
    expect((await http.get('/thing/exact').expect(200)).body).toEqual({ id: 1, name: 'one', tags: [] });
    expect((await http.get('/thing/not%20found').expect(404)).body).toEqual({ detail: 'Not found.' });
  });

  it.each(['extra key', 'other order', 'default left to the schema', 'wrong type', 'not found, off its shape'])(
    'fails an answer validation would change or refuse (%s) with the JSON 500',
    async (variant) => {
      const res = await appWithCheck().get(`/thing/${encodeURIComponent(variant)}`).expect(500);
      expect(res.body).toEqual({ detail: expect.any(String) });
      expect(JSON.stringify(res.body)).not.toContain('secret');
    },
  );
});
