import { eq, or } from 'drizzle-orm';
import pLimit from 'p-limit';
import type { z } from 'zod';
import { Username } from '../../contract/auth';
import { PersonName } from '../../contract/common';
import type { Store } from '../../db/open-database';
import { ValidationFailed } from '../errors';
import { RegistrationLimit } from './registration-limit';
import { SessionsService } from './sessions.service';
import type { LoginThrottle } from './login-throttle';
import { hashPassword, verifyAgainstDecoy, verifyPassword } from './passwords';
import { passwordProblems } from './password-policy';
import { usernameIdentity, usernameKey } from './username-identity';

export type UserRow = Store['t']['users']['$inferSelect'];
export type AuthUser = Omit<UserRow, 'passwordHash'>;

export interface NewUser {
  username: string;
  password: string;
  firstName?: string;
  lastName?: string;
  isAdmin?: boolean;
}

/** libuv's pool (UV_THREADPOOL_SIZE, 4 unless set) runs the hashes: registrations get half of it. */
const REGISTRATION_HASHES_AT_ONCE = Math.max(1, Math.floor((Number(process.env.UV_THREADPOOL_SIZE) || 4) / 2));

const INVALID_CREDENTIALS = 'Unable to log in with provided credentials.';

export class AuthService {
  /**
   * New passwords are hashed through this gate, at most half the libuv pool at once, so that a flood
   * of registrations queues behind it while logins (whose verifications do not pass it) still find
   * threads: 100 registrations at once made a correct login wait 16.7 s.
   */
  private readonly registrationHashes = pLimit(REGISTRATION_HASHES_AT_ONCE);

  constructor(
    private readonly store: Store,
    private readonly throttle: LoginThrottle,
    private readonly sessions: SessionsService = new SessionsService(store),
    private readonly registrations: RegistrationLimit = new RegistrationLimit(false),
  ) {}

  /** `client.address`: where a registration over the API came from, counted by the registration limit. */
  async register(input: NewUser, client?: { address: string }): Promise<AuthUser> {
    // The contract checks these on the API; the CLI and ADMIN_USERNAME come through here only.
    checked('username', Username, input.username);
    const firstName = checked('first_name', PersonName, input.firstName ?? '');
    const lastName = checked('last_name', PersonName, input.lastName ?? '');
    const problems = passwordProblems(input.password, input.username);
    if (problems.length > 0) throw ValidationFailed.field('password', ...problems);
    if (client) await this.registrations.take(client.address);
    const passwordHash = await this.registrationHashes(() => hashPassword(input.password));
    const { db, t } = this.store;
    const identity = usernameIdentity(input.username);
    const [created] = await db
      .insert(t.users)
      .values({
        username: input.username,
        usernameKey: identity.key,
        usernameSkeleton: identity.skeleton,
        passwordHash,
        firstName,
        lastName,
        isAdmin: input.isAdmin ?? false,
        createdAt: new Date(),
      })
      // Any of the three unique names: the spelling, its key, its skeleton.
      .onConflictDoNothing()
      .returning();
    if (!created) throw await this.nameTaken(input.username);
    return withoutSecrets(created);
  }

  /** Why a new name was refused: the same name in another spelling, or one that looks like it. */
  private async nameTaken(username: string): Promise<ValidationFailed> {
    const same = await this.findByUsername(username);
    return ValidationFailed.field(
      'username',
      same ? 'A user with that username already exists.' : 'This username looks too much like an existing one.',
    );
  }

  /**
   * Creates the user unless one of that name exists already; says whether it did. A name that cannot
   * be created (invalid, or looking like another user's) is refused as by register.
   */
  async ensureUser(input: NewUser): Promise<boolean> {
    if (await this.findByUsername(input.username)) return false;
    try {
      await this.register(input);
      return true;
    } catch (error) {
      // Another instance may have created it between the look-up and the insert.
      if (error instanceof ValidationFailed && error.fields.username && (await this.findByUsername(input.username))) return false;
      throw error;
    }
  }

  /**
   * A new token for valid credentials; `address` is where the attempt came from, for throttling, and
   * `userAgent` what the user will recognise the session by in their list.
   */
  async login(username: string, password: string, address: string, userAgent?: string): Promise<string> {
    // Every spelling of one name draws on the same failed-login allowance.
    const name = usernameKey(username);
    await this.throttle.assertAllowed(name, address);
    // An attempt that ends in an error (the database unavailable: a 503 the client retries) got no
    // answer about the password and is given back; a failure stays counted: assertAllowed counted it.
    const user = await this.userOf(username, password).catch(async (error: unknown) => {
      await this.throttle.giveBack(name, address);
      throw error;
    });
    if (!user) throw ValidationFailed.field('non_field_errors', INVALID_CREDENTIALS);
    await this.throttle.recordSuccess(name, address);
    return this.sessions.open(user.id, userAgent);
  }

  /** The user these credentials are right for; undefined when they are wrong. */
  private async userOf(username: string, password: string): Promise<UserRow | undefined> {
    const user = await this.findByUsername(username);
    const valid = user ? await verifyPassword(password, user.passwordHash) : await verifyAgainstDecoy(password);
    return valid ? user : undefined;
  }

  async updateNames(userId: number, names: { firstName?: string; lastName?: string }): Promise<AuthUser> {
    const { db, t } = this.store;
    const changes = Object.fromEntries(Object.entries(names).filter(([, value]) => value !== undefined));
    const query = Object.keys(changes).length
      ? db.update(t.users).set(changes).where(eq(t.users.id, userId)).returning()
      : db.select().from(t.users).where(eq(t.users.id, userId));
    const [user] = await query;
    if (Object.keys(changes).length) await this.sessions.usersChanged([userId]);
    return withoutSecrets(user);
  }

  async findById(userId: number): Promise<AuthUser | undefined> {
    const { db, t } = this.store;
    const [user] = await db.select().from(t.users).where(eq(t.users.id, userId));
    return user && withoutSecrets(user);
  }

  /**
   * The user of a name in any spelling that folds to it (`Alice`, `ａｌｉｃｅ` for `alice`). The exact
   * spelling wins: a user whose name clashed when the keys were introduced has no key, only that.
   */
  async findByUsername(username: string): Promise<UserRow | undefined> {
    const { db, t } = this.store;
    const users = await db
      .select()
      .from(t.users)
      .where(or(eq(t.users.username, username), eq(t.users.usernameKey, usernameKey(username))));
    return users.find((user) => user.username === username) ?? users[0];
  }
}

export function withoutSecrets({ passwordHash: _secret, ...user }: UserRow): AuthUser {
  return user;
}

/** `value` as `schema` reads it, or a 400 on `field` with the schema's first message. */
function checked<T>(field: string, schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw ValidationFailed.field(field, parsed.error.issues[0].message);
  return parsed.data;
}
