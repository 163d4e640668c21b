// The sweeps the server process starts (server/main.ts) run as often as the README says, and one that
// fails is logged and run again at its next time. Timers are faked: an hour passes in a moment.
import { pino } from 'pino';
import { afterEach, expect, it, vi, type MockInstance } from 'vitest';
import { PeriodicJob } from '../server/jobs/periodic-job';
import { describeApi } from './support/api';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

afterEach(() => {
  vi.useRealTimers();
});

/** Starts `job` and checks that `sweep` runs first after `everyMs`, not before, and again after as long. */
async function expectRunsEvery(job: PeriodicJob, sweep: MockInstance, everyMs: number) {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  job.start();
  try {
    await vi.advanceTimersByTimeAsync(everyMs - 1);
    expect(sweep).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(sweep).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(everyMs);
    expect(sweep).toHaveBeenCalledTimes(2);
  } finally {
    job.stop();
    sweep.mockRestore();
  }
}

describeApi('the periodic sweeps', (ctx) => {
  it('purges expired Idempotency-Keys every hour (README, Notifications)', async () => {
    const { idempotency } = ctx.services;
    await expectRunsEvery(idempotency.purging, vi.spyOn(idempotency, 'purgeExpired').mockResolvedValue(0), HOUR_MS);
  });

  it('deletes expired tokens every hour (README, TOKEN_TTL_DAYS)', async () => {
    const { sessions } = ctx.services;
    await expectRunsEvery(sessions.purging, vi.spyOn(sessions, 'purgeExpired').mockResolvedValue(0), HOUR_MS);
  });

  it('looks for timers running for 8 hours once a minute (README, Forgotten timers)', async () => {
    const { longTimers } = ctx.services;
    await expectRunsEvery(longTimers.job, vi.spyOn(longTimers, 'sweep').mockResolvedValue(0), MINUTE_MS);
  });
});

it('logs a sweep that failed and runs it again at its next time', async () => {
  const lines: Array<{ level: number; msg: string; err?: { message: string } }> = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const sweep = vi.fn().mockRejectedValueOnce(new Error('the database went away')).mockResolvedValue(3);
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  const job = new PeriodicJob('test sweep', 1000, sweep, logger);
  job.start();
  try {
    await vi.advanceTimersByTimeAsync(1000);
    expect(lines).toEqual([expect.objectContaining({ msg: 'test sweep failed', err: expect.objectContaining({ message: 'the database went away' }) })]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sweep).toHaveBeenCalledTimes(2);
    expect(lines).toHaveLength(1);
  } finally {
    job.stop();
  }
});
