// Thousands of connections need as many file descriptors, in the orchestrator (its clients) and in
// the server (their sockets); the server process is forked, so it inherits the orchestrator's limit.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { log } from './measure';

function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}

/**
 * Raises this process's open-file limit (soft and hard) to `needed` when it is lower, with util-linux's
 * `prlimit --pid <this process> --nofile=N:N`: raising the hard limit takes root (CAP_SYS_RESOURCE).
 * Without it, start the benchmark from a shell whose `ulimit -n` is high enough.
 */
export function ensureFileLimit(needed: number): void {
  const limit = openFileLimit();
  if (limit >= needed) return;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${needed}:${needed}`], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `the open-file limit is ${limit} and ${needed} are needed; prlimit could not raise it (${error instanceof Error ? error.message.split('\n')[0] : String(error)}): ` +
        `run as root, or from a shell with \`ulimit -n ${needed}\``,
    );
  }
  log(`open-file limit raised from ${limit} to ${openFileLimit()} (prlimit --pid ${process.pid} --nofile=${needed}:${needed})`);
}
