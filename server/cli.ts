// `npm run cli -- create-user --username U --password P [--admin] [--first-name F] [--last-name L]`
import { parseArgs } from 'node:util';
import { openDatabase } from '../db/open-database';
import { AuthService } from './auth/auth.service';
import { LoginThrottle } from './auth/login-throttle';
import { DomainError, ValidationFailed } from './errors';

const USAGE = 'usage: npm run cli -- create-user --username U --password P [--admin] [--first-name F] [--last-name L]';

async function createUser(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      username: { type: 'string' },
      password: { type: 'string' },
      admin: { type: 'boolean', default: false },
      'first-name': { type: 'string' },
      'last-name': { type: 'string' },
    },
  });
  if (!values.username || !values.password) throw new Error(USAGE);
  const store = await openDatabase(process.env.DATABASE_URL);
  try {
    const auth = new AuthService(store, new LoginThrottle(false));
    const user = await auth.register({
      username: values.username,
      password: values.password,
      firstName: values['first-name'],
      lastName: values['last-name'],
      isAdmin: values.admin,
    });
    console.log(`created ${user.isAdmin ? 'admin ' : ''}user ${user.username} (id ${user.id})`);
  } finally {
    await store.close();
  }
}

const [command, ...rest] = process.argv.slice(2);
try {
  if (command !== 'create-user') throw new Error(USAGE);
  await createUser(rest);
} catch (error) {
  const message =
    error instanceof ValidationFailed
      ? Object.entries(error.fields).map(([field, messages]) => `${field}: ${messages.join(' ')}`).join('\n')
      : error instanceof DomainError || error instanceof Error
        ? error.message
        : String(error);
  console.error(message);
  process.exitCode = 1;
}
