// The baseline the benchmark compares against: a long-poll as simple implementations write it, which
// asks the database every second whether the user has undelivered notifications, until it has some
// or the timeout passes. Same store, same auth, same response shape, same delivered-after-flush rule
// as the real route; only the waiting differs.
import { and, asc, eq, isNull } from 'drizzle-orm';
import express, { type Router } from 'express';
import { LONG_POLL_MAX_NOTIFICATIONS } from '../../contract/notifications';
import type { Store } from '../../db/open-database';
import type { Services } from '../../server/app';
import { authenticate, currentUser } from '../../server/auth/authenticate';
import type { NotificationRow } from '../../server/notifications/notifications.service';
import { serializeNotification } from '../../server/notifications/notification.serializer';

export const NAIVE_POLL_INTERVAL_MS = 1000;

export interface NaiveLongPoll {
  router: Router;
  /** Requests currently waiting (between their first database read and their answer). */
  waiting(): number;
}

export function naiveLongPoll(services: Pick<Services, 'sessions' | 'notifications'>, store: Store): NaiveLongPoll {
  // Its own query per check, as a simple implementation has: not the service's batched read, which
  // would merge the checks of one moment and hide what this baseline costs.
  const n = store.t.notifications;
  const undelivered = (userId: number) =>
    store.db
      .select()
      .from(n)
      .where(and(eq(n.userId, userId), isNull(n.deliveredAt)))
      .orderBy(asc(n.createdAt), asc(n.id))
      .limit(LONG_POLL_MAX_NOTIFICATIONS);
  let waiting = 0;
  const router = express.Router();
  router.get('/api/notifications/long-poll/', authenticate(services.sessions), (req, res, next) => {
    const userId = currentUser(req).id;
    const seconds = Math.min(60, Math.max(1, Number.parseInt(String(req.query.timeout ?? '30'), 10) || 30));
    const deadline = Date.now() + seconds * 1000;
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    let first = true;
    waiting++;
    const done = () => {
      if (finished) return;
      finished = true;
      waiting--;
      clearTimeout(timer);
    };
    res.once('close', done);

    const answer = (status: 'immediate' | 'new_notification' | 'timeout', rows: NotificationRow[]) => {
      done();
      const ids = rows.map((row) => row.id);
      if (ids.length > 0) {
        res.once('finish', () => {
          services.notifications.confirmDelivery(userId, ids).catch(() => {});
        });
      }
      res.json({
        status,
        notifications: rows.map(serializeNotification),
        has_new_notifications: rows.length > 0,
        ...(status === 'timeout' ? { message: 'No new notifications in the specified time period' } : {}),
      });
    };

    const check = async () => {
      if (finished) return;
      try {
        const rows = await undelivered(userId);
        if (finished) return;
        if (rows.length > 0) return answer(first ? 'immediate' : 'new_notification', rows);
        first = false;
        const left = deadline - Date.now();
        if (left <= 0) return answer('timeout', []);
        timer = setTimeout(() => void check(), Math.min(NAIVE_POLL_INTERVAL_MS, left));
      } catch (error) {
        done();
        next(error);
      }
    };
    void check();
  });
  return { router, waiting: () => waiting };
}
