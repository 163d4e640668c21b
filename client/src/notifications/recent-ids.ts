/**
 * The ids of the last notifications the app took, to drop the ones that come again: delivery is
 * at-least-once, so a batch that reached the app once may come back after a lost answer.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 1000) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** The items not taken before, in their order. */
  unseen<T extends { id: string }>(items: T[]): T[] {
    return items.filter((item) => !this.ids.has(item.id));
  }

  remember(items: Array<{ id: string }>): void {
    for (const { id } of items) {
      this.ids.add(id);
      // A Set keeps insertion order: the first is the oldest.
      if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    }
  }
}
