import type supertest from 'supertest';
import { expect } from 'vitest';

/**
 * Every item of a list paged with `Link: <…>; rel="next"`, following the links from `url`; checks
 * each page holds at most `limit` items and that only a full page has a next one.
 */
export async function allPages<T>(http: supertest.Agent, url: string, auth: Record<string, string>, limit: number): Promise<T[][]> {
  const pages: T[][] = [];
  for (let next: string | undefined = url; next; ) {
    const res: supertest.Response = await http.get(next).set(auth).expect(200);
    expect(Array.isArray(res.body)).toBe(true);
    expect(res.body.length).toBeLessThanOrEqual(limit);
    pages.push(res.body);
    next = /<([^>]+)>; rel="next"/.exec(res.headers.link ?? '')?.[1];
    if (next) expect(res.body).toHaveLength(limit);
  }
  return pages;
}
