// README: without TEST_DATABASE_URL and TEST_REDIS_URL, `npm test` "prints one line saying they were
// skipped, and with CI=true it fails instead" — CI=1 too, as some CI systems set it.
import { afterEach, describe, expect, it, vi } from 'vitest';
import setup from './support/global-setup';

describe('the test run without Postgres or Redis', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it('fails in CI (CI=true or CI=1), naming what is missing', () => {
    for (const ci of ['true', '1', 'TRUE']) {
      vi.stubEnv('CI', ci);
      vi.stubEnv('TEST_DATABASE_URL', '');
      vi.stubEnv('TEST_REDIS_URL', 'redis://127.0.0.1:6379');
      expect(() => setup(), `CI=${ci}`).toThrow(/Postgres \(TEST_DATABASE_URL\)/);
      vi.stubEnv('TEST_DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/test');
      vi.stubEnv('TEST_REDIS_URL', '');
      expect(() => setup(), `CI=${ci}`).toThrow(/Redis \(TEST_REDIS_URL\)/);
    }
  });

  it('says in one line what it skipped outside CI', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    for (const ci of [undefined, '', 'false', '0']) {
      vi.stubEnv('CI', ci);
      vi.stubEnv('TEST_DATABASE_URL', '');
      vi.stubEnv('TEST_REDIS_URL', '');
      expect(() => setup(), `CI=${ci}`).not.toThrow();
    }
    expect(log).toHaveBeenCalledTimes(4);
    expect(log.mock.calls[0][0]).toMatch(/^Skipped the Postgres \(TEST_DATABASE_URL\) and Redis \(TEST_REDIS_URL\) suites/);
  });

  it('says nothing and fails nothing when both are set, in CI or not', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.stubEnv('TEST_DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/test');
    vi.stubEnv('TEST_REDIS_URL', 'redis://127.0.0.1:6379');
    for (const ci of ['true', '1', undefined]) {
      vi.stubEnv('CI', ci);
      expect(() => setup()).not.toThrow();
    }
    expect(log).not.toHaveBeenCalled();
  });
});
