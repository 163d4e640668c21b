// Says once which backends the run covers. In CI (CI=true, or CI=1 as some CI systems set it) a
// missing Postgres or Redis fails the run instead of quietly testing less.

/** Whether this is a CI run: CI set to "true" or "1" (any case, surrounding spaces ignored). */
function isCi(): boolean {
  return ['true', '1'].includes((process.env.CI ?? '').trim().toLowerCase());
}

export default function setup() {
  const missing = [
    !process.env.TEST_DATABASE_URL && 'Postgres (TEST_DATABASE_URL)',
    !process.env.TEST_REDIS_URL && 'Redis (TEST_REDIS_URL)',
  ].filter(Boolean);
  if (missing.length === 0) return;
  if (isCi()) {
    throw new Error(`CI=${process.env.CI} but ${missing.join(' and ')} not set: the run must cover every backend.`);
  }
  console.log(`Skipped the ${missing.join(' and ')} suites: set those variables to run them (CI does).`);
}
