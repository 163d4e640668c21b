import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { InMemoryBus } from '../server/realtime/bus';
import { DeliveryHub } from '../server/realtime/delivery-hub';
import { WakeLatch } from '../server/realtime/wake-latch';

/** A subscriber that counts what it is told. */
function counter() {
  const told = { wakes: 0, shutdowns: 0 };
  return { told, wake: () => void told.wakes++, shutdown: () => void told.shutdowns++ };
}

describe('DeliveryHub', () => {
  const bus = new InMemoryBus();
  let hub: DeliveryHub;
  const newHub = () => (hub = new DeliveryHub(bus, async () => [], { maxConnectionsPerUser: 5, fallbackPollMs: 1000, logger: pino({ level: 'silent' }) }));
  afterEach(() => hub.close());

  it("wakes each subscriber of the users a wake-up names, one or several per user, and no one else's", () => {
    newHub();
    const [alone, first, second, other] = [counter(), counter(), counter(), counter()];
    hub.subscribe(1, alone);
    hub.subscribe(2, first);
    const stopSecond = hub.subscribe(2, second);
    hub.subscribe(3, other);
    expect(hub.stats()).toMatchObject({ users: 3, subscribers: 4 });

    hub.wake([1, 2]);
    expect([alone, first, second, other].map((s) => s.told.wakes)).toEqual([1, 1, 1, 0]);

    stopSecond();
    hub.wake([2]);
    expect([first, second].map((s) => s.told.wakes)).toEqual([2, 1]);
    expect(hub.stats()).toMatchObject({ users: 3, subscribers: 3 });
  });

  it('forgets a user whose subscribers all left, in any order, and takes them back', () => {
    newHub();
    const [a, b, c] = [counter(), counter(), counter()];
    const stops = [hub.subscribe(7, a), hub.subscribe(7, b), hub.subscribe(7, c)];
    for (const stop of [stops[1], stops[0], stops[2]]) stop();
    stops[0](); // a second time: nothing
    expect(hub.stats()).toMatchObject({ users: 0, subscribers: 0 });
    hub.subscribe(7, b);
    hub.wake([7]);
    expect([a, b, c].map((s) => s.told.wakes)).toEqual([0, 1, 0]);
  });

  it('wakes every subscriber of a user even when one of them leaves while being woken', () => {
    newHub();
    const later = counter();
    let stopLater = () => {};
    hub.subscribe(4, { wake: () => stopLater(), shutdown: () => {} });
    stopLater = hub.subscribe(4, later);
    hub.wake([4]);
    expect(later.told.wakes).toBe(1);
  });

  it('wakes everyone on a wake-up for all, and ends every wait when it closes', async () => {
    newHub();
    const [a, b] = [counter(), counter()];
    hub.subscribe(1, a);
    hub.subscribe(2, b);
    await bus.publish({ all: true });
    expect([a, b].map((s) => s.told.wakes)).toEqual([1, 1]);
    hub.close();
    expect([a, b].map((s) => s.told.shutdowns)).toEqual([1, 1]);
    expect(hub.stats()).toMatchObject({ users: 0, subscribers: 0 });
  });

  it('takes a wake latch as its subscriber: a wake-up and a shutdown reach its wait', async () => {
    newHub();
    const latch = new WakeLatch();
    hub.subscribe(9, latch);
    const woken = latch.next(10_000);
    hub.wake([9]);
    expect(await woken).toBe('woken');
    const ended = latch.next(10_000);
    hub.close();
    expect(await ended).toBe('aborted');
    // Subscribing to a closed hub ends the wait at once.
    const late = new WakeLatch();
    hub.subscribe(9, late);
    expect(await late.next(10_000)).toBe('aborted');
  });
});
