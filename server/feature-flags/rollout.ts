import murmurhash3js from 'murmurhash3js';

/**
 * The user's bucket for a flag, 0..99: MurmurHash3 (x86, 32 bit, seed 0) of "<flag key>:<user id>"
 * modulo 100, as Unleash normalises it. Stable across processes and releases, so a user's answer
 * never flips between requests or instances; and since the user is in while the bucket is below the
 * percentage, raising the percentage only ever adds users.
 */
export const rolloutBucket = (flagKey: string, userId: number): number => murmurhash3js.x86.hash32(`${flagKey}:${userId}`) % 100;

export const inRollout = (flag: { key: string; rolloutPercentage: number }, userId: number): boolean =>
  rolloutBucket(flag.key, userId) < flag.rolloutPercentage;
