import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import type { ApiContext, TestUser } from '../api';
import { describeExchange, problemsOf } from './answer-checks';
import { headerValue, queryString } from './encoding';
import type { FixtureRecipe } from './fixtures';
import { Fixtures } from './fixtures';
import type { FuzzInput } from './inputs';
import type { Operation } from './operations';
import { sendRaw, type RawAnswer, type RawRequest } from './raw-http';
import { ReadBack } from './read-back';

/**
 * Some work goes on after an answer has been sent: a long-poll's or a stream's notifications are
 * marked delivered once written, in a batch a turn or two of the event loop later (the server runs
 * in this process). Waiting those turns keeps it out of the next request's read-back.
 */
async function serverSettled(): Promise<void> {
  for (let turn = 0; turn < 4; turn++) await new Promise((resolve) => setImmediate(resolve));
}

/** A 32-bit seed from the run's seed and a name (FNV-1a). */
function seedOf(seed: number, name: string): number {
  let hash = 0x811c9dc5;
  for (const char of name) hash = Math.imul(hash ^ char.codePointAt(0)!, 0x01000193);
  return (seed ^ hash) | 0;
}

/** fast-check prints a counterexample whole: a huge generated value would fill the screen. */
const shortened = (report: string) =>
  report.replace(/^(Counterexample: .{1500}).+$/m, (line, head: string) => `${head}… (${line.length} characters)`);

/** The one who sends without a token. */
export const NOBODY = 'nobody';

/** Long enough for a password hash on a loaded machine; an answer later than that is a hang. */
const ANSWER_WITHIN_MS = 10_000;
/** A waiting operation asked to wait one second: past this it is waiting as it was asked to, not hung. */
const WAITING_ANSWER_WITHIN_MS = 3_000;

export interface Exchange {
  request: RawRequest;
  answer: RawAnswer;
  /** Throws, naming the request and its answer, unless `condition` holds. */
  assert(condition: boolean, what: string): void;
}

export interface FuzzerOptions {
  ctx: ApiContext;
  origin: string;
  operations: Operation[];
  actors: Record<string, TestUser>;
  fixtures: Record<string, FixtureRecipe>;
  /** Operations that may wait for something to happen (a long-poll): no answer in time is no fault. */
  waiting: string[];
  seed: number;
}

/**
 * Sends generated requests to the app and checks what every answer must be (see problemsOf), that a
 * 4xx changed nothing in the database, and keeps the fixtures and the actors' tokens up to date.
 */
export class Fuzzer {
  readonly fixtures: Fixtures;
  private readonly readBack: ReadBack;

  constructor(private readonly options: FuzzerOptions) {
    this.readBack = new ReadBack(options.ctx.database.store);
    this.fixtures = new Fixtures(
      options.operations,
      options.fixtures,
      async (actor, operation, path, body) => (await this.send(operation, { as: actor, query: {}, headers: {}, body }, path)).answer,
      options.seed,
    );
  }

  /**
   * Runs `check` on `numRuns` inputs of `inputs`. Each property has a seed of its own, derived from
   * the run's and its name (the same properties would otherwise all generate the same values), so
   * FUZZ_SEED replays it, alone (vitest -t) or with the others.
   */
  async property(name: string, inputs: fc.Arbitrary<FuzzInput>, numRuns: number, check: (input: FuzzInput) => Promise<void>): Promise<void> {
    // A request is slow next to a pure function: shrinking a failure stops after a few dozen tries.
    const property = fc.asyncProperty(fc.limitShrink(inputs, 40), check);
    try {
      await fc.assert(property, { seed: seedOf(this.options.seed, name), numRuns });
    } catch (error) {
      if (error instanceof Error) error.message = `FUZZ_SEED=${this.options.seed} replays this.\n${shortened(error.message)}`;
      throw error;
    }
  }

  /** Sends one generated request and checks the answer; returns it for more checks of the caller's. */
  async exchange(operation: Operation, input: FuzzInput): Promise<Exchange> {
    const owner = input.objectsOf ?? input.as;
    const path = await this.fixtures.pathFor(operation.path, owner, input.path);
    await serverSettled();
    const before = this.readBack.rows();
    const { request, answer } = await this.send(operation, input, path);
    const exchange: Exchange = {
      request,
      answer,
      assert: (condition, what) => {
        if (!condition) throw new Error(`${what}:\n${describeExchange(request, answer, this.sender(input))}`);
      },
    };
    if (!answer.answered) {
      exchange.assert(this.options.waiting.includes(operation.id), `no answer within ${ANSWER_WITHIN_MS / 1000} s`);
      return exchange;
    }
    const problems = problemsOf(operation, answer);
    exchange.assert(problems.length === 0, problems.join('; '));
    if (answer.status >= 400) {
      // A refused request must not have written anything.
      exchange.assert(isDeepStrictEqual(this.readBack.rows(), before), 'a 4xx answer, yet the database changed');
    } else {
      await this.afterSuccess(operation, input, owner, path);
    }
    return exchange;
  }

  /** Sends the request as the fuzz builds it: path, query, the sender's token, header parameters, body. */
  private async send(operation: Operation, input: FuzzInput, path: string): Promise<{ request: RawRequest; answer: RawAnswer }> {
    const headers: Array<[string, string]> = [];
    const authorization = input.authorization ?? (input.as === NOBODY ? undefined : this.options.actors[input.as].auth.Authorization);
    if (authorization !== undefined) headers.push(['Authorization', authorization]);
    for (const [name, value] of Object.entries(input.headers)) if (value !== undefined) headers.push([name, headerValue(value)]);
    let body: Buffer | undefined;
    if (input.rawBody) {
      headers.push(...Object.entries(input.rawBody.headers));
      body = input.rawBody.bytes;
    } else if (input.body !== undefined) {
      headers.push(['Content-Type', 'application/json']);
      body = Buffer.from(JSON.stringify(input.body));
    }
    const request: RawRequest = { method: operation.method, path: path + queryString(input.query), headers, body };
    const within = this.options.waiting.includes(operation.id) ? WAITING_ANSWER_WITHIN_MS : ANSWER_WITHIN_MS;
    return { request, answer: await sendRaw(this.options.origin, request, within) };
  }

  private sender(input: FuzzInput) {
    return { name: input.as, token: input.as === NOBODY ? undefined : this.options.actors[input.as].token };
  }

  /** A DELETE removed a fixture; a logout revoked the sender's token (any success might have). */
  private async afterSuccess(operation: Operation, input: FuzzInput, owner: string, path: string): Promise<void> {
    if (operation.method === 'DELETE') this.fixtures.deleted(owner, path);
    if (input.as !== NOBODY && input.authorization === undefined) await this.signInAgainIfSignedOut(this.options.actors[input.as]);
  }

  private async signInAgainIfSignedOut(user: TestUser): Promise<void> {
    const { ctx } = this.options;
    const signedIn = await ctx.services.sessions.authenticate(user.auth.Authorization).then(
      () => true,
      () => false,
    );
    if (signedIn) return;
    // A token as login makes one, without login's password hash: a fifth of a second each time the
    // fuzz logs an actor out, which adds up.
    const token = await ctx.services.sessions.open(user.id);
    user.token = token;
    user.auth = { Authorization: `Token ${token}` };
  }
}
