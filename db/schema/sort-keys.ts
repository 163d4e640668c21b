// The sort keys of a running time entry, which has no end and no duration: larger than any real
// one, so that it sorts after finished entries when ascending and every key is non-null (a keyset
// cursor compares row values, which NULL would break). Both schemas and the list's filters use them.

/** A running entry's end key: after every real instant in milliseconds (2^53 - 1). */
export const OPEN_END_MS = 9_007_199_254_740_991;

/** A running entry's duration key: after every real duration in seconds (2^31 - 1). */
export const OPEN_DURATION_S = 2_147_483_647;
