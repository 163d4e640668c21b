import type { JsonSchema } from './schema-arbitrary';

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: JsonSchema;
}

/** One operation of the OpenAPI document, as the fuzz test needs it. */
export interface Operation {
  /** `METHOD /path/{param}/`: the test's name for it. */
  id: string;
  method: string;
  /** The path template, `{name}` for each path parameter. */
  path: string;
  parameters: Parameter[];
  /** The `application/json` request body's schema, when the operation takes a body. */
  body?: JsonSchema;
  /** The statuses the document lists, as strings ('200', '404', …). */
  statuses: string[];
  /** The content types the document lists for a status (none: the answer has no body). */
  contentTypes(status: number): string[];
  /** Whether the document asks for a token (a non-empty `security`). */
  isProtected: boolean;
}

interface DocumentOperation {
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  responses: Record<string, { content?: Record<string, unknown> }>;
  security?: unknown[];
}

const METHODS = ['get', 'put', 'post', 'patch', 'delete'] as const;

/** Every operation of an OpenAPI 3 document (`buildOpenApiDocument()` or openapi.json). */
export function operationsOf(document: { paths?: object; security?: unknown[] }): Operation[] {
  const paths = (document.paths ?? {}) as Record<string, Partial<Record<string, DocumentOperation>>>;
  return Object.entries(paths).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method]).map((method) => toOperation(path, method, item[method]!, document.security ?? [])),
  );
}

function toOperation(path: string, method: string, operation: DocumentOperation, defaultSecurity: unknown[]): Operation {
  const parameters = (operation.parameters ?? []).map((parameter) => {
    if (!['path', 'query', 'header'].includes(parameter.in)) throw new Error(`${path}: parameters in ${parameter.in} are not fuzzed yet`);
    return {
      name: parameter.name,
      in: parameter.in as Parameter['in'],
      required: parameter.in === 'path' || Boolean(parameter.required),
      schema: parameter.schema ?? {},
    };
  });
  const content = operation.requestBody?.content;
  if (content && !content['application/json']) throw new Error(`${method} ${path}: only JSON bodies are fuzzed yet`);
  return {
    id: `${method.toUpperCase()} ${path}`,
    method: method.toUpperCase(),
    path,
    parameters,
    body: content ? (content['application/json'].schema ?? {}) : undefined,
    statuses: Object.keys(operation.responses),
    contentTypes: (status) => Object.keys(operation.responses[String(status)]?.content ?? {}),
    isProtected: (operation.security ?? defaultSecurity).length > 0,
  };
}

export const parametersIn = (operation: Operation, where: Parameter['in']) =>
  operation.parameters.filter((parameter) => parameter.in === where);
