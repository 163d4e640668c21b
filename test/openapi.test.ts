import { readFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument, renderOpenApiDocument } from '../server/openapi/openapi-document';

type Operation = { operationId?: string; security?: unknown[]; responses: Record<string, { description: string }> };

const operations = () =>
  Object.entries(buildOpenApiDocument().paths as Record<string, Record<string, Operation>>).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
  );

describe('openapi.json', () => {
  it('is the committed output of `npm run openapi` (regenerate it when the contract changes)', () => {
    const committed = readFileSync(new URL('../openapi.json', import.meta.url), 'utf8');
    expect(committed).toBe(renderOpenApiDocument());
  });

  it('describes a shared schema for one field without describing its other uses', () => {
    const document = buildOpenApiDocument() as unknown as {
      paths: Record<string, Record<string, { parameters?: Array<{ name: string; description?: string }>; responses: Record<string, { content?: Record<string, { schema: { properties: Record<string, { description?: string }> } }> }> }>>;
    };
    // The id of a path is just an id; the time-entry filter `project` says more of its own.
    const pathId = document.paths['/api/projects/{id}/'].get.parameters!.find((parameter) => parameter.name === 'id')!;
    expect(pathId.description).toBeUndefined();
    const entry = document.paths['/api/time_entries/{id}/'].get.responses['200'].content!['application/json'].schema.properties;
    expect(entry.idle_duration.description).toBe('The idle sessions recorded for the entry, added up.');
    expect(entry.actual_duration.description).toMatch(/^Duration minus idle time/);
  });

  it('validates as OpenAPI 3', async () => {
    const api = await SwaggerParser.validate(structuredClone(buildOpenApiDocument()) as never);
    expect(api).toHaveProperty('openapi', expect.stringMatching(/^3\./));
  });

  it('gives every operation a unique id', () => {
    const ids = operations().map(({ operation }) => operation.operationId);
    expect(ids.every(Boolean)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('requires a token on every operation but register, login and the health checks', () => {
    const document = buildOpenApiDocument();
    expect(Object.keys(document.components?.securitySchemes ?? {})).toEqual(['TokenAuth', 'BearerAuth']);
    for (const { path, operation } of operations()) {
      const isPublic = ['/auth/users/', '/auth/token/login/', '/health/', '/health/live'].includes(path);
      expect(operation.security, path).toEqual(isPublic ? [] : [{ TokenAuth: [] }, { BearerAuth: [] }]);
      if (!isPublic) expect(operation.responses['401'], `${path} declares 401`).toBeDefined();
    }
  });

  it('carries the descriptions and examples written in the contract', () => {
    const text = renderOpenApiDocument();
    expect(text).toContain('A user with that username already exists.');
    expect(text).toContain('2025-11-29T20:00:00.000Z');
    expect(text).toContain('Validation errors: each invalid field');
  });

  it('documents the SSE stream as text/event-stream', () => {
    const sse = operations().find(({ path }) => path === '/api/notifications/sse/')!;
    const ok = sse.operation.responses['200'] as unknown as { content: Record<string, unknown> };
    expect(Object.keys(ok.content)).toEqual(['text/event-stream']);
  });

  it('documents 400 as either field errors or a detail', () => {
    const register = operations().find(({ path, method }) => path === '/auth/users/' && method === 'post')!;
    const schema = (register.operation.responses['400'] as unknown as { content: Record<string, { schema: { oneOf: unknown[] } }> })
      .content['application/json'].schema;
    expect(schema.oneOf).toHaveLength(2);
  });

  it('lists every status an operation can answer: the body, path, token, limit, 500 and deadline ones too', () => {
    const statuses = (path: string, method: string) =>
      Object.keys(operations().find((op) => op.path === path && op.method === method)!.operation.responses);
    expect(statuses('/auth/users/me/', 'get')).toEqual(['200', '304', '401', '500', '503']);
    // A query is parsed: 400 too.
    expect(statuses('/api/projects/', 'get')).toEqual(['200', '304', '400', '401', '500', '503']);
    expect(statuses('/api/projects/{id}/', 'patch')).toEqual(['200', '400', '401', '403', '404', '413', '415', '429', '500', '503']);
    expect(statuses('/api/projects/{id}/', 'delete')).toEqual(['204', '401', '403', '404', '429', '500', '503']);
    expect(statuses('/api/notifications/', 'get')).toEqual(['200', '304', '400', '401', '500', '503']);
    expect(statuses('/api/notifications/', 'post')).toEqual(['201', '400', '401', '403', '409', '413', '415', '429', '500', '503']);
    // No deadline for the two that wait, but the database can be unavailable to them too.
    expect(statuses('/api/notifications/long-poll/', 'get')).toEqual(['200', '304', '400', '401', '429', '500', '503']);
    expect(statuses('/api/notifications/sse/', 'get')).toEqual(['200', '401', '429', '500', '503']);
    expect(statuses('/auth/token/logout/', 'post')).toEqual(['204', '400', '401', '413', '415', '429', '500', '503']);
    expect(statuses('/auth/token/login/', 'post')).toEqual(['200', '400', '413', '415', '429', '500', '503']);
    expect(statuses('/health/', 'get')).toEqual(['200', '304', '500', '503']);
    expect(statuses('/health/live', 'get')).toEqual(['200', '304', '500']);
    for (const { operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        expect(response.description, status).not.toMatch(/^\d+$/);
      }
    }
  });

  it('uses only patterns that every JSON-Schema validator reads (no \\p{…} classes, valid without the u flag)', () => {
    const patterns: string[] = [];
    JSON.stringify(buildOpenApiDocument(), (key, value) => {
      if (key === 'pattern' && typeof value === 'string') patterns.push(value);
      return value;
    });
    for (const pattern of patterns) {
      expect(pattern).not.toMatch(/\\[pP]\{/);
      expect(() => new RegExp(pattern), pattern).not.toThrow();
    }
    const register = operations().find(({ path, method }) => path === '/auth/users/' && method === 'post')!.operation as unknown as {
      requestBody: { content: { 'application/json': { schema: { properties: Record<string, { pattern?: string; description?: string }> } } } };
    };
    const username = register.requestBody.content['application/json'].schema.properties.username;
    expect(username.pattern).toBeUndefined();
    expect(username.description).toContain('Letters of any script, digits and @ . + - _ only.');
  });
});
