import fc from 'fast-check';
import type { Operation } from './operations';
import type { RawAnswer } from './raw-http';
import { valueOf } from './schema-arbitrary';

/**
 * How to make the object a path parameter names, for the paths where the default does not do. The
 * default, for `/things/{id}/…`, is `POST /things/` with a generated valid body, and the id is the
 * answer's `id`.
 */
export interface FixtureRecipe {
  /** The operation that makes it (`METHOD /path/`), when it is not POST to the collection. */
  create?: string;
  /**
   * Its body, when a generated one cannot do: it must name other real objects, which `own` gives,
   * e.g. `own('/api/projects/{id}/')` is the id of a project of the same actor.
   */
  body?: (own: (template: string) => Promise<number>) => unknown;
  /**
   * Its id, when known before it is made (a user added to a project): then a 400 to the request
   * that makes it means that it exists already, which does as well.
   */
  knownId?: () => string;
  /** Who makes it, when not the actor whose request needs it (flags are made by an admin). */
  madeBy?: string;
  /** The answer's field that the path parameter takes, when it is not `id` (a flag's `key`). */
  idField?: string;
  /**
   * Makes it in steps of its own, when one request cannot (a membership: its project's owner invites,
   * the member accepts); answers its id. The other fields do not apply then.
   */
  make?: (actor: string, steps: FixtureSteps) => Promise<string>;
}

/** What a FixtureRecipe's `make` works with. */
export interface FixtureSteps {
  /** The id of `actor`'s object that the last parameter of `template` names (made when needed). */
  own(template: string, actor: string): Promise<number>;
  /**
   * Sends `METHOD /template/` as `actor` to `path`; answers its JSON body and the next page of its
   * `Link` header, or throws unless it succeeded.
   */
  send(actor: string, operationId: string, path: string, body?: unknown): Promise<{ body: unknown; next?: string }>;
}

/** Sends a request to make a fixture: as `actor`, to `path` (filled in), with a JSON body. */
export type MakeRequest = (actor: string, operation: Operation, path: string, body: unknown) => Promise<RawAnswer>;

/** Generated bodies a fixture may need before one is accepted (a title that is only spaces…). */
const ATTEMPTS = 10;

interface Made {
  actor: string;
  /** The collection path with the ids before it filled in: `/api/projects/7/members/`. */
  collection: string;
  id: string;
}

const PARAMETER = /\{([^}]+)\}/g;

/**
 * The objects each actor owns, made on first need and remembered until a DELETE removes them, so
 * every path parameter of a generated request names a real object.
 */
export class Fixtures {
  private readonly made: Made[] = [];
  private samples = 0;

  constructor(
    private readonly operations: Operation[],
    private readonly recipes: Record<string, FixtureRecipe>,
    private readonly makeRequest: MakeRequest,
    private readonly seed: number,
  ) {}

  /** `template` with each `{parameter}` a real object of `actor`'s, or the segment given for it. */
  async pathFor(template: string, actor: string, given: Record<string, string> = {}): Promise<string> {
    let path = '';
    let real = '';
    let last = 0;
    for (const match of template.matchAll(PARAMETER)) {
      const literal = template.slice(last, match.index);
      path += literal;
      real += literal;
      const id = await this.idOf(actor, template.slice(0, match.index), real, match[1]);
      path += given[match[1]] ?? id;
      real += id;
      last = match.index + match[0].length;
    }
    return path + template.slice(last);
  }

  /** The actor's objects at `path` and below it are gone (a DELETE of it succeeded). */
  deleted(actor: string, path: string): void {
    for (let i = this.made.length - 1; i >= 0; i--) {
      const made = this.made[i];
      const gone = `${made.collection}${made.id}/` === path || made.collection.startsWith(path);
      if (made.actor === actor && gone) this.made.splice(i, 1);
    }
  }

  /** Forgets the actor's objects: the next request makes fresh ones. */
  forget(actor: string): void {
    for (let i = this.made.length - 1; i >= 0; i--) if (this.made[i].actor === actor) this.made.splice(i, 1);
  }

  private async idOf(actor: string, collectionTemplate: string, collection: string, parameter: string): Promise<string> {
    const known = this.made.find((made) => made.actor === actor && made.collection === collection);
    if (known) return known.id;
    const id = await this.make(actor, collectionTemplate, parameter);
    this.made.push({ actor, collection, id });
    return id;
  }

  private async make(actor: string, collectionTemplate: string, parameter: string): Promise<string> {
    const key = `${collectionTemplate}{${parameter}}/`;
    const recipe = this.recipes[key] ?? {};
    if (recipe.make) return recipe.make(actor, { own: (template, owner) => this.lastIdIn(template, owner), send: (...args) => this.send(...args) });
    const creatorId = recipe.create ?? `POST ${collectionTemplate}`;
    const creator = this.operations.find((operation) => operation.id === creatorId);
    if (!creator) throw new Error(`No fixture for ${key}: there is no ${creatorId}; add a FIXTURES entry for it`);
    const maker = recipe.madeBy ?? actor;
    const path = await this.pathFor(creator.path, maker);
    let answer: RawAnswer | undefined;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const body = recipe.body ? await recipe.body((template) => this.lastIdIn(template, maker)) : this.sample(creator);
      answer = await this.makeRequest(maker, creator, path, body);
      if (recipe.knownId && answer.answered && (answer.status < 300 || answer.status === 400)) return recipe.knownId();
      const made = answer.answered && answer.status < 300 ? (JSON.parse(answer.text) as Record<string, unknown>) : undefined;
      const id = made?.[recipe.idField ?? 'id'];
      if (id !== undefined) return String(id);
    }
    const got = answer?.answered ? `${answer.status} ${answer.text.slice(0, 300)}` : 'no answer';
    throw new Error(`No fixture for ${key}: ${creatorId} as ${maker} answered ${got}; add a FIXTURES entry for it`);
  }

  private async send(actor: string, operationId: string, path: string, body?: unknown): Promise<{ body: unknown; next?: string }> {
    const operation = this.operations.find((candidate) => candidate.id === operationId);
    if (!operation) throw new Error(`A fixture step names ${operationId}, which the document does not have`);
    const answer = await this.makeRequest(actor, operation, path, body);
    if (!answer.answered || answer.status >= 300) {
      throw new Error(`A fixture step, ${operationId} as ${actor}, answered ${answer.answered ? `${answer.status} ${answer.text.slice(0, 300)}` : 'nothing'}`);
    }
    const link = [answer.headers.link ?? []].flat().join(', ');
    return { body: answer.text ? JSON.parse(answer.text) : undefined, next: /<([^>]+)>; rel="next"/.exec(link)?.[1] };
  }

  /** The id that the last parameter of `template` names, of an object of `actor`'s. */
  private async lastIdIn(template: string, actor: string): Promise<number> {
    const segments = (await this.pathFor(template, actor)).split('/').filter(Boolean);
    return Number(segments.at(-1));
  }

  /** A valid body for `operation`, from the run's seed, so a replay makes the same objects. */
  private sample(operation: Operation): unknown {
    if (!operation.body) return undefined;
    return fc.sample(valueOf(operation.body), { seed: this.seed + this.samples++, numRuns: 1 })[0];
  }
}
