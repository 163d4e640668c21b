/**
 * The last answer of each GET the server tagged with an ETag, by URL, for the routes that are asked
 * again and again (a feature flag's check): sent back as If-None-Match, a 304 then stands for that
 * answer, and the server has neither to evaluate nor to send it again. The oldest go first beyond
 * the capacity.
 */
export class ConditionalGets {
  private readonly answers = new Map<string, { etag: string; body: unknown }>();

  constructor(private readonly capacity = 200) {}

  /** The If-None-Match header for `url`, when an answer of it is kept. */
  conditionFor(url: string): Record<string, string> {
    const kept = this.answers.get(url);
    return kept ? { 'If-None-Match': kept.etag } : {};
  }

  /** The kept answer's body that a 304 for `url` stands for. */
  keptBody(url: string): { body: unknown } | undefined {
    const kept = this.answers.get(url);
    return kept && { body: kept.body };
  }

  keep(url: string, etag: string, body: unknown): void {
    this.answers.delete(url);
    this.answers.set(url, { etag, body });
    if (this.answers.size > this.capacity) this.answers.delete(this.answers.keys().next().value as string);
  }
}
