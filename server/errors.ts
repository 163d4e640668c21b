// What a service throws when a request cannot be served. Services know nothing of HTTP:
// server/http/error-handler.ts is the one place that turns these into status codes and bodies.

export type FieldErrors = Record<string, string[]>;

/**
 * An empty field-error map without a prototype, so a field named after the input's keys
 * (`__proto__`, `constructor`, `prototype`) is only a key: it neither reads an inherited value nor
 * sets the map's prototype. Every map of field errors starts here.
 */
export const emptyFieldErrors = (): FieldErrors => Object.create(null) as FieldErrors;

export class DomainError extends Error {}

/** The input breaks a rule: each field with its messages (`non_field_errors` for the whole). */
export class ValidationFailed extends DomainError {
  constructor(readonly fields: FieldErrors) {
    super(Object.values(fields).flat().join(' '));
  }
  static field(name: string, ...messages: string[]) {
    const fields = emptyFieldErrors();
    fields[name] = messages;
    return new ValidationFailed(fields);
  }
}

/** The object does not exist for this user (whether or not it exists for another). */
export class NotFound extends DomainError {
  constructor(message = 'Not found.') {
    super(message);
  }
}

/** The user may see the object but not do this to it. */
export class Forbidden extends DomainError {
  constructor(message = 'You do not have permission to perform this action.') {
    super(message);
  }
}

export class Unauthenticated extends DomainError {
  constructor(message = 'Authentication credentials were not provided.') {
    super(message);
  }
}

export class TooManyRequests extends DomainError {
  constructor(
    readonly retryAfterSeconds: number,
    message = 'Too many requests. Try again later.',
  ) {
    super(message);
  }
}

/** The request is well-formed but the object's state does not allow it: 400 `{"error": …}`. */
export class InvalidOperation extends DomainError {}

/** The same, where the API answers with DRF's `{"detail": …}` (stopping a timer that is not running). */
export class NotPossibleNow extends DomainError {}

/** The request clashes with another one in progress or with an earlier one. */
export class Conflict extends DomainError {}
