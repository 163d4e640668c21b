import type { Redis } from 'ioredis';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { addressKey } from '../limits/address-key';
import { consumeOrRefuse, createLimiter } from '../limits/create-limiter';

export interface RegistrationLimitSettings {
  /** Accounts one address may register within the window. */
  perAddress: number;
  windowSeconds: number;
}

export const REGISTRATION_LIMIT: RegistrationLimitSettings = { perAddress: 10, windowSeconds: 60 * 60 };

/**
 * Bounds the accounts one address registers: each costs a password hash (~170 ms of CPU here), and
 * brings its own connection cap and write limit. An attempt counts once its body was found valid,
 * before the hash (a taken username too: its hash was paid, and its 400 says the name exists — the
 * count also bounds how fast one address learns which names do). Counted by addressKey; shared through
 * Redis like the login counts.
 */
export class RegistrationLimit {
  private readonly limiter: RateLimiterAbstract;

  constructor(
    private readonly enabled: boolean,
    redis?: Redis,
    private readonly settings: RegistrationLimitSettings = REGISTRATION_LIMIT,
  ) {
    this.limiter = createLimiter({ name: 'registrations:address', points: settings.perAddress, windowSeconds: settings.windowSeconds, redis });
  }

  /** Counts one registration from `address`, or refuses it (429) when the address has none left. */
  async take(address: string): Promise<void> {
    if (!this.enabled) return;
    const { perAddress, windowSeconds } = this.settings;
    await consumeOrRefuse(this.limiter, addressKey(address), `Too many accounts registered from this address: at most ${perAddress} per ${windowSeconds / 60} minutes.`);
  }
}
