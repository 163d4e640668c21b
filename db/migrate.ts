// `npm run db:migrate`: brings the database that DATABASE_URL names up to date, then exits.
// The server does the same at start; this is for deploy pipelines that migrate first.
import { openDatabase } from './open-database';

const store = await openDatabase(process.env.DATABASE_URL);
await store.close();
console.log(`${store.dialect} database is up to date`);
