import { randomBytes, scryptSync } from 'node:crypto';
import type { Store } from '../../db/open-database';
import { usernameIdentity } from '../../server/auth/username-identity';
import { STRONG_PASSWORD } from './api';

/**
 * STRONG_PASSWORD hashed in the stored format but with cheap scrypt parameters. The parameters travel
 * inside each hash, so logins against it take a millisecond instead of ~250 ms: for the many tests
 * where the hash is not the point (throttling tests make many failed logins, and some must fit in a
 * short window). Registration and login with real hashes are tested in auth.test.ts's 'auth' suite.
 */
export const CHEAP_HASH = (() => {
  const [N, r, p] = [1024, 8, 1];
  const salt = randomBytes(16);
  const key = scryptSync(STRONG_PASSWORD.normalize('NFKC'), salt, 32, { N, r, p });
  return ['scrypt', N, r, p, salt.toString('base64'), key.toString('base64')].join('$');
})();

const keysOf = (username: string) => {
  const { key, skeleton } = usernameIdentity(username);
  return { usernameKey: key, usernameSkeleton: skeleton };
};

/** Inserts users that log in with STRONG_PASSWORD cheaply (see CHEAP_HASH); returns their ids. */
export async function insertCheapUsers(store: Store, usernames: string[], firstName = ''): Promise<number[]> {
  const { db, t } = store;
  const rows = await db
    .insert(t.users)
    .values(usernames.map((username) => ({ username, ...keysOf(username), passwordHash: CHEAP_HASH, firstName, lastName: '', isAdmin: false, createdAt: new Date() })))
    .returning({ id: t.users.id });
  return rows.map((row) => row.id);
}
