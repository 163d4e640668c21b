/**
 * The last answer of each GET the server tagged with an ETag, by URL, for the routes that are asked
 * again and again (a feature flag's check): sent back as If-None-Match, a 304 then stands for that
 * answer, and the server has neither to evaluate nor to send it again. The oldest go first beyond
 * the capacity.
 */
export class ConditionalGets {
  private readonly answers = new Map<string, { etag: string; body: unknown }>();

  constructor(private readonly capacity = 200) {}

  /**
   * The kept answer of `url`: its ETag goes as If-None-Match, and a 304 then stands for its body —
   * this one, taken when asking, not whatever is kept when the 304 arrives (another answer of the
   * same URL may have replaced it meanwhile, or newer URLs pushed it out).
   */
  answerOf(url: string): { etag: string; body: unknown } | undefined {
    return this.answers.get(url);
  }

  keep(url: string, etag: string, body: unknown): void {
    this.answers.delete(url);
    this.answers.set(url, { etag, body });
    if (this.answers.size > this.capacity) this.answers.delete(this.answers.keys().next().value as string);
  }
}
