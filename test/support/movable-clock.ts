/**
 * A clock for the in-process caches (SharedCache's `clock`) that moves only when told: their
 * lifetimes of minutes pass in a moment.
 */
export function movableClock(startMs = 1_000) {
  let now = startMs;
  return {
    now: () => now,
    /**
     * Moves it on by `ms`. Resolves once lru-cache's memo of the time (it reuses a reading for 1 ms,
     * by a timer) has lapsed, so that the cache sees the move.
     */
    async advance(ms: number): Promise<void> {
      now += ms;
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
  };
}
