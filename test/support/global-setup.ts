// Says once which backends the run covers. In CI (CI=true) a missing Postgres or Redis fails the run
// instead of quietly testing less.
export default function setup() {
  const missing = [
    !process.env.TEST_DATABASE_URL && 'Postgres (TEST_DATABASE_URL)',
    !process.env.TEST_REDIS_URL && 'Redis (TEST_REDIS_URL)',
  ].filter(Boolean);
  if (missing.length === 0) return;
  if (process.env.CI === 'true') {
    throw new Error(`CI=true but ${missing.join(' and ')} not set: the run must cover every backend.`);
  }
  console.log(`Skipped the ${missing.join(' and ')} suites: set those variables to run them (CI does).`);
}
