// Stands in for @anatine/zod-openapi inside the published package (client/tsup.config.ts aliases
// it here). The contract annotates its schemas for openapi.json; the client only validates and
// types with them, so it needs the annotations to be harmless, not the document generator (a
// CommonJS module that an ES module bundle cannot load, and most of the contract's weight).
import type { z } from 'zod';

export function extendApi<T extends z.ZodTypeAny>(schema: T, metadata: object = {}): T {
  const annotated = schema as T & { metaOpenApi?: object };
  annotated.metaOpenApi = { ...annotated.metaOpenApi, ...metadata };
  return schema;
}

export const generateSchema = (_schema: z.ZodTypeAny): object => ({});
