import type { ZodError, ZodIssue } from 'zod';
import { emptyFieldErrors, type FieldErrors } from '../errors';

const NON_FIELD = 'non_field_errors';

/** A zod error as DRF's `{"field": ["message"]}`; errors of the whole value go to non_field_errors. */
export function fieldErrorsOf(error: ZodError): FieldErrors {
  const fields = emptyFieldErrors();
  const add = (field: string, message: string) => {
    const messages = (fields[field] ??= []);
    if (!messages.includes(message)) messages.push(message);
  };
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) add([...issue.path, key].join('.'), 'Unknown field.');
      continue;
    }
    add(issue.path.length ? issue.path.join('.') : NON_FIELD, messageOf(issue));
  }
  return fields;
}

function messageOf(issue: ZodIssue): string {
  if (issue.code === 'invalid_type') {
    if (issue.received === 'undefined') return 'This field is required.';
    if (issue.path.length === 0) return `Invalid data. Expected ${article(issue.expected)}, but got ${issue.received}.`;
    return `Expected ${issue.expected}, received ${issue.received}.`;
  }
  return issue.message;
}

const article = (type: string) => (type === 'object' ? 'a JSON object' : /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);
