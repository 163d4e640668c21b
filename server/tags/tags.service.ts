import { and, asc, count, eq } from 'drizzle-orm';
import { z } from 'zod';
import { isUniqueViolation } from '../../db/errors';
import { rowsOf, type Store } from '../../db/open-database';
import { NotFound, ValidationFailed } from '../errors';
import { assertRoomForOne, lockOwner, OWNERSHIP_CAPS } from '../limits/ownership-caps';
import { decodeCursor, IdCursor, pageOf, type Page, type PageRequest } from '../pagination/keyset-cursor';
import { rowsAfter } from '../pagination/keyset';

/** After the first page: the last tag's title and id. */
const TagCursor = IdCursor.extend({ t: z.string().max(200) });

export type TagRow = Store['t']['tags']['$inferSelect'];

const duplicateTitle = () => ValidationFailed.field('title', 'You already have a tag with this title.');

export class TagsService {
  constructor(
    private readonly store: Store,
    /** How many tags one user may own. */
    private readonly maxOwned = OWNERSHIP_CAPS.tagsPerUser,
  ) {}

  /** The user's tags by title, in pages. */
  async list(userId: number, page: PageRequest): Promise<Page<TagRow>> {
    const { db, t } = this.store;
    const after = page.cursor ? decodeCursor(page.cursor, TagCursor) : undefined;
    const rows = await db
      .select()
      .from(t.tags)
      .where(and(eq(t.tags.userId, userId), after && rowsAfter(t.tags.title, t.tags.id, after.t, after.i, 'asc')))
      .orderBy(asc(t.tags.title), asc(t.tags.id))
      .limit(page.limit + 1);
    return pageOf(rows, page.limit, (last) => ({ t: last.title, i: last.id }));
  }

  /** A new tag of the user's, unless the title is taken or they own as many as they may already. */
  async create(userId: number, title: string): Promise<TagRow> {
    const { t } = this.store;
    const cap = this.maxOwned;
    const [tag] = await this.store.transaction(function* (tx) {
      yield* rowsOf(lockOwner(tx, t, userId));
      const [{ owned }] = yield* rowsOf(tx.select({ owned: count() }).from(t.tags).where(eq(t.tags.userId, userId)));
      assertRoomForOne(owned, cap, 'tags');
      return yield* rowsOf(
        tx
          .insert(t.tags)
          .values({ userId, title, createdAt: new Date() })
          .onConflictDoNothing({ target: [t.tags.userId, t.tags.title] })
          .returning(),
      );
    });
    if (!tag) throw duplicateTitle();
    return tag;
  }

  async rename(userId: number, tagId: number, title: string): Promise<TagRow> {
    const { db, t } = this.store;
    try {
      const [tag] = await db
        .update(t.tags)
        .set({ title })
        .where(and(eq(t.tags.id, tagId), eq(t.tags.userId, userId)))
        .returning();
      if (!tag) throw new NotFound();
      return tag;
    } catch (error) {
      if (isUniqueViolation(error)) throw duplicateTitle();
      throw error;
    }
  }

  async remove(userId: number, tagId: number): Promise<void> {
    const { db, t } = this.store;
    const removed = await db
      .delete(t.tags)
      .where(and(eq(t.tags.id, tagId), eq(t.tags.userId, userId)))
      .returning();
    if (removed.length === 0) throw new NotFound();
  }
}
