import type { Operation } from './operations';
import type { RawAnswer, RawRequest } from './raw-http';

type Answered = Extract<RawAnswer, { answered: true }>;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** What the body of an answer must never show: how the server is built, where it lives. */
const LEAKS: Array<[string, RegExp]> = [
  ['a stack frame', /\bat (?:async )?[\w$.<>[\] ]*\(?(?:\/|file:|node:)[^)\s]*:\d+:\d+/],
  ['a source file path', /[\w.-]+\.(?:ts|js|mjs|cjs):\d+/],
  ['node_modules', /node_modules/],
  ['the working directory', new RegExp(escapeRegExp(process.cwd()))],
];

/** A content type without its parameters (`text/csv; charset=utf-8` → `text/csv`). */
const mediaTypeOf = (contentType: string) => contentType.split(';')[0].trim().toLowerCase();

/**
 * What every answer must be, whatever was asked: not a 5xx; a body in the content type the document
 * lists for its status (JSON for every error), that parses; nothing in it about the server's
 * insides; a status the document lists for the operation. Returns the problems found.
 */
export function problemsOf(operation: Operation, answer: Answered): string[] {
  const problems: string[] = [];
  if (answer.status >= 500) problems.push(`a server error (${answer.status})`);

  const listed = operation.statuses.includes(String(answer.status));
  // For a status the document does not list it describes no body: every answer of this API is JSON.
  // The document may name a content type with its parameters (the CSV export's charset).
  const allowed = listed ? operation.contentTypes(answer.status).map(mediaTypeOf) : ['application/json'];
  const mediaType = mediaTypeOf(String(answer.headers['content-type'] ?? ''));
  if (allowed.length === 0 && answer.text !== '') problems.push('a body, where the document describes none');
  if (allowed.length > 0 && !allowed.includes(mediaType)) {
    problems.push(`content type ${JSON.stringify(mediaType)}, not ${allowed.join(' or ')}`);
  }
  if (mediaType === 'application/json') {
    try {
      JSON.parse(answer.text);
    } catch {
      problems.push('a body that is not JSON');
    }
  }
  for (const [what, pattern] of LEAKS) if (pattern.test(answer.text)) problems.push(`${what} in the body`);

  if (!listed) {
    problems.push(`status ${answer.status}, which the document does not list for ${operation.id} (it lists ${operation.statuses.join(', ')})`);
  }
  return problems;
}

const preview = (text: string, max = 300) => (text.length > max ? `${JSON.stringify(text.slice(0, max))}… (${text.length} chars)` : JSON.stringify(text));

/** The request and its answer, for a failure message: enough to replay it with curl. */
export function describeExchange(request: RawRequest, answer: RawAnswer, sender: { name: string; token?: string }): string {
  const hideToken = (value: string) => (sender.token ? value.replaceAll(sender.token, `<${sender.name}'s token>`) : value);
  const headers = request.headers.map(([name, value]) => `  ${name}: ${hideToken(preview(value, 120))}`).join('\n');
  const body = request.body ? `\n  body: ${preview(request.body.toString('latin1'))}` : '';
  const got = answer.answered
    ? `${answer.status} ${String(answer.headers['content-type'] ?? '(no content type)')} ${preview(answer.text)}`
    : 'no answer in time';
  return `${request.method} ${request.path} as ${sender.name}\n${headers}${body}\n→ ${got}`;
}
