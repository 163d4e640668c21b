// Thousands of connections need as many file descriptors, in the orchestrator (its clients) and in
// the server (their sockets); the server process is forked, so it inherits the orchestrator's limit.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { log } from './measure';

/** This process's open-file limit (the soft one, which applies). */
export function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}

/**
 * Raises this process's open-file limit (soft and hard) to `wanted` when it is lower, with
 * util-linux's `prlimit --pid <this process> --nofile=N:N`. Raising the hard limit takes the
 * CAP_SYS_RESOURCE capability (root on most machines; a container may withhold it): without it the
 * soft limit goes up to the hard one. Returns the limit in effect afterwards; the caller scales
 * down to it.
 */
export function raiseFileLimit(wanted: number): number {
  if (openFileLimit() >= wanted) return openFileLimit();
  for (const limits of [`${wanted}:${wanted}`, `${wanted}:`]) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limits}`], { stdio: 'pipe' });
      break;
    } catch {
      // The hard limit cannot be raised here: try the soft one alone, then make do.
    }
  }
  const limit = openFileLimit();
  if (limit < wanted) {
    const hard = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))?.split(/\s{2,}/)[2];
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:`], { stdio: 'pipe' });
  }
  log(`open-file limit ${openFileLimit()} (wanted ${wanted})`);
  return openFileLimit();
}
