import fc from 'fast-check';
import { afterEach, beforeAll, describe, it } from 'vitest';
import { buildOpenApiDocument } from '../server/openapi/openapi-document';
import { describeApi, type TestUser } from './support/api';
import { withAttackedBodies } from './support/fuzz/body-attacks';
import type { FixtureRecipe, FixtureSteps } from './support/fuzz/fixtures';
import { Fuzzer, NOBODY, type Exchange } from './support/fuzz/fuzzer';
import {
  anyInput,
  mutatedInputs,
  pathOfNothing,
  prototypeInput,
  validInput,
  type FuzzInput,
  type ValidInputOptions,
} from './support/fuzz/inputs';
import { operationsOf, parametersIn, type Operation } from './support/fuzz/operations';
import type { RawAnswer } from './support/fuzz/raw-http';

/**
 * Issue 12: every operation of the OpenAPI document, driven with generated requests — valid ones,
 * mutated ones, another user's, without a token, with broken path escapes, with bodies sent wrongly,
 * with prototype keys. It reads the document, so a new domain is fuzzed without a change here (at
 * most a FIXTURES line when its objects cannot be made by POSTing to their collection).
 */

/** FUZZ_SEED=<n> replays a run: the same requests, in the same order. */
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, not ${process.env.FUZZ_SEED}`);
console.log(`fuzz seed: ${seed}`);

const operations = operationsOf(buildOpenApiDocument());
const withPathParameters = operations.filter((operation) => parametersIn(operation, 'path').length > 0);
const withBody = operations.filter((operation) => operation.body);

/** Who takes part: `member` only ever is added to projects; `intruder` only ever asks for others' objects. */
const actors = {} as Record<'user' | 'admin' | 'member' | 'intruder', TestUser>;

/** Objects a path parameter names that POSTing a generated body to their collection does not make. */
const FIXTURES: Record<string, FixtureRecipe> = {
  // Notifications are sent by admins to others; a user makes one of their own with test/.
  '/api/notifications/{id}/': { create: 'POST /api/notifications/test/' },
  // A member joins by invitation: the project's owner invites them and they accept (unless a random
  // request of the fuzz has made them a member already).
  '/api/projects/{id}/members/{userId}/': {
    make: async (owner, steps) => {
      const project = await steps.own('/api/projects/{id}/', owner);
      await steps.send(owner, 'POST /api/projects/{id}/invitations/', `/api/projects/${project}/invitations/`, { username: actors.member.username });
      const pending = (await steps.send('member', 'GET /api/invitations/', '/api/invitations/')).body as Array<{ id: number; project: { id: number } }>;
      const invitation = pending.find((candidate) => candidate.project.id === project);
      if (invitation) await steps.send('member', 'POST /api/invitations/{id}/accept/', `/api/invitations/${invitation.id}/accept/`);
      return String(actors.member.id);
    },
  },
  // The owner's view of an invitation: of a name nobody has, so that no fixture accepts it.
  '/api/projects/{id}/invitations/{invitationId}/': {
    make: async (owner, steps) => {
      const project = await steps.own('/api/projects/{id}/', owner);
      const username = `fuzz-invitee-${++invitees}`;
      await steps.send(owner, 'POST /api/projects/{id}/invitations/', `/api/projects/${project}/invitations/`, { username });
      return String(await sentInvitationId(steps, owner, project, username));
    },
  },
  // The invitee's view: member invites the actor to a fresh project of member's.
  '/api/invitations/{id}/': {
    make: async (invitee, steps) => {
      const project = (await steps.send('member', 'POST /api/projects/', '/api/projects/', { title: 'Invitations' })).body as { id: number };
      const { username } = actors[invitee as keyof typeof actors];
      await steps.send('member', 'POST /api/projects/{id}/invitations/', `/api/projects/${project.id}/invitations/`, { username });
      return String(await sentInvitationId(steps, 'member', project.id, username));
    },
  },
  // An entry belongs to a project of the user's.
  '/auth/tokens/{id}/': {
    // A session of the actor's own beside the one the fuzz sends with: a login, the newest in their list.
    make: async (actor, steps) => {
      const { username, password } = actors[actor as keyof typeof actors];
      await steps.send(actor, 'POST /auth/token/login/', '/auth/token/login/', { username, password });
      let newest = 0;
      for (let path: string | undefined = '/auth/tokens/'; path; ) {
        const page = await steps.send(actor, 'GET /auth/tokens/', path);
        for (const session of page.body as Array<{ id: number }>) newest = Math.max(newest, session.id);
        path = page.next;
      }
      return String(newest);
    },
  },
  '/api/time_entries/{id}/': { body: async (own) => ({ title: 'Fuzzed', project: await own('/api/projects/{id}/') }) },
  // Flags are made by an admin and named by their key, for everyone.
  '/api/feature-flags/flags/{key}/': { madeBy: 'admin', idField: 'key' },
  '/api/feature-flags/user-features/{feature_key}/': { create: 'POST /api/feature-flags/flags/', madeBy: 'admin', idField: 'key' },
  '/api/feature-flags/flags/{key}/users/{user_id}/': {
    madeBy: 'admin',
    body: () => ({ user_ids: [actors.member.id] }),
    knownId: () => String(actors.member.id),
  },
};

let invitees = 0;

/** The id of the project's pending invitation of `username`, from its owner's list (followed page by page). */
async function sentInvitationId(steps: FixtureSteps, owner: string, project: number, username: string): Promise<number> {
  for (let path: string | undefined = `/api/projects/${project}/invitations/`; path; ) {
    const page = await steps.send(owner, 'GET /api/projects/{id}/invitations/', path);
    const found = (page.body as Array<{ id: number; username: string }>).find((invitation) => invitation.username === username);
    if (found) return found.id;
    path = page.next;
  }
  throw new Error(`No pending invitation of ${username} in project ${project}`);
}

/**
 * Objects that belong to no user: every user may ask about a feature flag (and is told whether it
 * is on for them), so another user's request is no intrusion there.
 */
const SHARED = ['/api/feature-flags/user-features/{feature_key}/'];
const namesSharedObjects = (operation: Operation) => SHARED.some((prefix) => operation.path.startsWith(prefix));

/** Operations that wait for something to happen, with the parameters that make them wait briefly. */
const WAITING: Record<string, Record<string, unknown>> = {
  'GET /api/notifications/long-poll/': { timeout: 1 },
};

/**
 * Operations whose requests take long — a long-poll waits its second, a login or a registration
 * hashes a password (a fifth of a second of CPU on an idle machine) — get few runs per property.
 */
const SLOW = new Set(['GET /api/notifications/long-poll/', 'POST /auth/token/login/', 'POST /auth/users/']);

/** Runs per property: about 2,200 requests in all. */
const RUNS = { valid: 8, mutatedPerPlace: 4, otherUser: 6, noToken: 6, escapes: 6, bodies: 1, prototype: 6 };
const runsOf = (operation: Operation, runs: number) => (SLOW.has(operation.id) ? Math.min(runs, 3) : runs);

/** One part of the fuzz: which operations, how many runs each, what requests, what else to check. */
interface Part {
  title: string;
  operations: Operation[];
  runs: number;
  /** The requests to send: one set, or sets by name (each a property of its own). */
  inputs: (operation: Operation) => fc.Arbitrary<FuzzInput> | Record<string, fc.Arbitrary<FuzzInput>>;
  /** Checks of the part's own, besides those every answer gets (Fuzzer.exchange). */
  check?: (exchange: Exchange, operation: Operation, input: FuzzInput) => Promise<void> | void;
  before?: () => void;
}

const isClientError = (answer: RawAnswer) => answer.answered && answer.status >= 400 && answer.status < 500;

const sameAnswer = (one: RawAnswer, other: RawAnswer) =>
  one.answered && other.answered && one.status === other.status && one.text === other.text;

/** No Authorization header, and ones that authenticate no one. */
const BROKEN_AUTHORIZATION = fc.oneof(
  fc.constantFrom(
    undefined,
    '',
    'Token',
    'Token ',
    'Bearer nope',
    'Token a b',
    `Token ${'a'.repeat(300)}`,
    'Basic dXNlcjpjb3JyZWN0IGhvcnNl',
    'Token \u00e9\u00e9',
  ),
  fc.string({ maxLength: 60 }).map((text) => `Token ${Buffer.from(text).toString('base64url')}`),
);

/** Malformed escapes where an id belongs: `decodeURIComponent` throws on each. */
const BROKEN_ESCAPES = ['%', '%%', '%E0%A4%A', '%FF', '%00', '%C0%AF', '%ED%A0%80', '%u0041', '%2', '%G1', '1%', '%0A%', 'a%20b%'];

/**
 * Globals whose own state changes as they work (the test runner's bookkeeping, the console's
 * stream): not poisoning. The prototypes they share with everything else are still watched.
 */
const OWN_STATE = { ignoredRootRegex: /^(?:__vitest_\w+__|console)$/ };

describeApi(
  'contract fuzz',
  (ctx) => {
    let fuzzer: Fuzzer;
    let poisoning: typeof import('@fast-check/poisoning');

    beforeAll(async () => {
      [actors.user, actors.admin, actors.member, actors.intruder] = await Promise.all([
        ctx.createUser(),
        ctx.createUser({ admin: true }),
        ctx.createUser(),
        ctx.createUser(),
      ]);
      fuzzer = new Fuzzer({
        ctx,
        origin: await ctx.listen(),
        operations,
        actors,
        fixtures: FIXTURES,
        waiting: Object.keys(WAITING),
        seed,
      });
      // Imported now, so the globals it compares with are those of a set-up app and test runner.
      poisoning = await import('@fast-check/poisoning');
    });

    // A poisoned prototype would spoil every later test: say so, and put the globals back.
    afterEach(() => {
      try {
        poisoning.assertNoPoisoning(OWN_STATE);
      } finally {
        poisoning.restoreGlobals(OWN_STATE);
      }
    });

    const valid = (operation: Operation, options: Partial<ValidInputOptions> = {}) =>
      validInput(operation, { as: ['user', 'admin'], pinned: WAITING[operation.id], ...options });

    /**
     * A describe block with a test per operation. An operation's cases (the places of a request, the
     * ways to send a body) are properties of its one test, each with a seed from its own name.
     */
    const fuzzPart = (part: Part) =>
      describe(part.title, () => {
        if (part.before) beforeAll(part.before);
        for (const operation of part.operations) {
          it(operation.id, async () => {
            const inputs = part.inputs(operation);
            const cases = inputs instanceof fc.Arbitrary ? { '': inputs } : inputs;
            for (const [name, arbitrary] of Object.entries(cases)) {
              await fuzzer.property(`${part.title} ${operation.id} ${name}`, arbitrary, runsOf(operation, part.runs), async (input) => {
                const exchange = await fuzzer.exchange(operation, input);
                await part.check?.(exchange, operation, input);
              });
            }
          });
        }
      });

    fuzzPart({
      title: 'valid requests, as a user and as an admin',
      operations,
      runs: RUNS.valid,
      inputs: (operation) => valid(operation),
    });

    fuzzPart({
      title: 'each place of a valid request mutated',
      operations,
      runs: RUNS.mutatedPerPlace,
      inputs: (operation) => mutatedInputs(operation, valid(operation)),
    });

    fuzzPart({
      title: "another user's objects: answered as missing ones (404), nothing changed",
      operations: withPathParameters.filter((operation) => !namesSharedObjects(operation)),
      // Fresh objects: no random request of an earlier test can have shared them with the intruder.
      before: () => fuzzer.fixtures.forget('user'),
      runs: RUNS.otherUser,
      inputs: (operation) => valid(operation, { as: ['intruder'], objectsOf: 'user' }),
      check: async (theirs, operation, input) => {
        if (theirs.answer.answered && theirs.answer.status === 404) return;
        // A rule the body breaks may be found before the object is looked up (a 400, say). Then a
        // missing object must get the same answer, or the answer would tell that the object exists.
        const missing = await fuzzer.exchange(operation, { ...input, path: pathOfNothing(operation) });
        theirs.assert(
          isClientError(theirs.answer) && sameAnswer(theirs.answer, missing.answer),
          "another user's object, answered neither 404 nor as a missing one is",
        );
      },
    });

    fuzzPart({
      title: 'without a token or with a broken one: 401 on every protected operation',
      operations,
      runs: RUNS.noToken,
      inputs: (operation) =>
        fc
          .tuple(anyInput(operation, valid(operation, { as: [NOBODY], objectsOf: 'user' })), BROKEN_AUTHORIZATION)
          // A mutated path segment may match no route at all (an empty one): 404 whoever asks.
          .filter(([input]) => !input.change?.startsWith('path.'))
          .map(([input, authorization]) => ({ ...input, authorization })),
      check: ({ answer, assert }, operation) => {
        if (operation.isProtected) assert(answer.answered && answer.status === 401, 'a protected operation without a valid token, yet not 401');
      },
    });

    fuzzPart({
      title: 'broken percent-escapes in place of a path parameter: 4xx',
      operations: withPathParameters,
      runs: RUNS.escapes,
      inputs: (operation) =>
        fc
          .tuple(valid(operation, { as: ['user'] }), fc.constantFrom(...parametersIn(operation, 'path')), fc.constantFrom(...BROKEN_ESCAPES))
          .map(([input, parameter, escape]) => ({ ...input, path: { [parameter.name]: escape }, change: `path.${parameter.name}` })),
      check: ({ answer, assert }) => assert(isClientError(answer), 'a broken escape in the path, yet not 4xx'),
    });

    fuzzPart({
      title: 'bodies sent wrongly: content types, encodings, too big, too deep, not JSON, not UTF-8',
      operations: withBody,
      runs: RUNS.bodies,
      inputs: (operation) => withAttackedBodies(valid(operation, { as: ['user'] })),
      check: ({ answer, assert }, _operation, input) => {
        if (input.rawBody?.refused) assert(isClientError(answer), `${input.rawBody.kind}, yet not 4xx`);
      },
    });

    fuzzPart({
      title: 'prototype keys in query strings, bodies and header names: no global prototype changed',
      operations,
      runs: RUNS.prototype,
      inputs: (operation) => prototypeInput(operation, valid(operation, { as: ['user'] })),
      check: () => poisoning.assertNoPoisoning(OWN_STATE),
    });
  },
  {
    dialects: ['sqlite'],
    // The fuzz writes far more than 300 times a minute per user; under the real limit every write
    // after the 300th would be a 429 before validation, and nothing behind the limiter would be fuzzed.
    writeLimit: { perUser: 1_000_000, windowSeconds: 60 },
  },
);
