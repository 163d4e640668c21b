// `npm run db:migrate`: brings the database that DATABASE_URL names up to date, then exits.
// The server does the same at start; this is for deploy pipelines that migrate first.
import { fillUsernameKeys } from '../server/auth/username-backfill';
import { openDatabase } from './open-database';

const store = await openDatabase(process.env.DATABASE_URL);
// Users from before usernames had keys get theirs; names that clash with an older one are reported.
for (const { username, clashesWith, by } of await fillUsernameKeys(store)) {
  console.warn(`username ${JSON.stringify(username)} clashes with ${JSON.stringify(clashesWith)} (same ${by}): rename one of the two`);
}
await store.close();
console.log(`${store.dialect} database is up to date`);
