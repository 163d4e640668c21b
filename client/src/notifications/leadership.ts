/**
 * Runs `whileLeader` in one tab at a time among the tabs of an origin that ask under `name`: in the
 * tab that leads, until it closes (`signal`) or hands over (the signal whileLeader gets). Resolves
 * once this tab has closed.
 */
export type Leadership = (name: string, signal: AbortSignal, whileLeader: (leading: AbortSignal) => Promise<void>) => Promise<void>;

/** The browser's Web Locks: the tab holding the lock leads; the browser releases it when the tab goes. */
export const byWebLock: Leadership = async (name, signal, whileLeader) => {
  try {
    await navigator.locks.request(name, { signal }, () => whileLeader(signal));
  } catch (error) {
    // Aborted while waiting for the lock: this tab closed without ever leading.
    if (!signal.aborted) throw error;
  }
};

/** How often a leader says so, and how long the others wait without hearing it before one takes over. */
const HEARTBEAT_MS = 250;
const SILENCE_MS = 1000;
/** A tab that has just opened and hears no leader this soon takes the lead. */
const FIRST_CLAIM_MS = 200;

type ElectionMessage = { kind: 'leading'; id: string } | { kind: 'resigned'; id: string };

/**
 * Where Web Locks are missing (older browsers): an election over a BroadcastChannel. The leader says
 * so every 250 ms; a tab that hears no leader for a second takes the lead; a closing leader says it
 * resigns, so another takes over at once. Two tabs that claim together both hear the other, and the
 * one with the larger id steps down (the other relays what either took; the app sees nothing twice).
 */
export const byHeartbeat: Leadership = (name, signal, whileLeader) =>
  new Promise<void>((resolve) => {
    const channel = new BroadcastChannel(`${name}:election`);
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    /** When a leader was last heard (set back so that a lone new tab leads after FIRST_CLAIM_MS). */
    let lastHeard = Date.now() - SILENCE_MS + FIRST_CLAIM_MS;
    let lastSaid = 0;
    let leading: AbortController | undefined;
    const say = (message: ElectionMessage) => channel.postMessage(message);

    const lead = () => {
      const mine = new AbortController();
      leading = mine;
      lastSaid = Date.now();
      say({ kind: 'leading', id });
      void whileLeader(AbortSignal.any([signal, mine.signal])).finally(() => {
        if (leading !== mine) return;
        leading = undefined;
        // Ended by itself (a refused token, say), not by a hand-over: this tab is done, as it is
        // when its Web Lock callback returns; leading again would only repeat the refusal.
        if (!mine.signal.aborted) close();
      });
    };
    const stepDown = () => {
      leading?.abort();
      leading = undefined;
      lastHeard = Date.now();
    };
    channel.onmessage = ({ data }: MessageEvent<ElectionMessage>) => {
      // A leader that resigned: take over soon, at a random moment, so that not every tab claims at once.
      if (data.kind === 'resigned') lastHeard = Date.now() - SILENCE_MS + Math.random() * FIRST_CLAIM_MS;
      else if (!leading) lastHeard = Date.now();
      else if (data.id < id) stepDown();
    };
    const tick = setInterval(() => {
      if (leading && Date.now() - lastSaid >= HEARTBEAT_MS) {
        lastSaid = Date.now();
        say({ kind: 'leading', id });
      } else if (!leading && Date.now() - lastHeard > SILENCE_MS) lead();
    }, HEARTBEAT_MS / 5);
    const close = () => {
      clearInterval(tick);
      if (leading) say({ kind: 'resigned', id });
      leading?.abort();
      channel.close();
      resolve();
    };
    if (signal.aborted) close();
    else signal.addEventListener('abort', close, { once: true });
  });
