import type { ZodError, ZodIssue } from 'zod';
import { emptyFieldErrors, type FieldErrors } from '../errors';

const NON_FIELD = 'non_field_errors';

/** The most problems one answer reports: a 98 KB body could otherwise draw a 3 MB answer. */
export const MAX_REPORTED_PROBLEMS = 20;

/**
 * A zod error as DRF's `{"field": ["message"]}`; errors of the whole value go to non_field_errors.
 * At most MAX_REPORTED_PROBLEMS messages (then a note says there were more); an array over its
 * maximum length is reported as that alone, not element by element.
 */
export function fieldErrorsOf(error: ZodError): FieldErrors {
  const fields = emptyFieldErrors();
  let reported = 0;
  let more = false;
  const add = (field: string, message: string) => {
    if (fields[field]?.includes(message)) return;
    if (reported === MAX_REPORTED_PROBLEMS) {
      more = true;
      return;
    }
    (fields[field] ??= []).push(message);
    reported++;
  };
  const tooLong = error.issues.filter((issue) => issue.code === 'too_big' && issue.type === 'array').map((issue) => issue.path);
  for (const issue of error.issues) {
    if (tooLong.some((array) => isInside(issue.path, array))) continue;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) add([...issue.path, key].join('.'), 'Unknown field.');
      continue;
    }
    add(issue.path.length ? issue.path.join('.') : NON_FIELD, messageOf(issue));
  }
  if (more) (fields[NON_FIELD] ??= []).push(`Only the first ${MAX_REPORTED_PROBLEMS} problems are reported.`);
  return fields;
}

/** Whether `path` lies strictly within `container` (an element of that array, say). */
const isInside = (path: (string | number)[], container: (string | number)[]) =>
  path.length > container.length && container.every((part, i) => path[i] === part);

function messageOf(issue: ZodIssue): string {
  if (issue.code === 'invalid_type') {
    if (issue.received === 'undefined') return 'This field is required.';
    if (issue.path.length === 0) return `Invalid data. Expected ${article(issue.expected)}, but got ${issue.received}.`;
    return `Expected ${issue.expected}, received ${issue.received}.`;
  }
  return issue.message;
}

const article = (type: string) => (type === 'object' ? 'a JSON object' : /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);
