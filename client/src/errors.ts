/** The server refused the token (401): it is unknown, revoked or missing. The app should log out. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
  readonly status = 401;

  constructor(readonly detail: string) {
    super(`Punchclock refused the token: ${detail}`);
  }
}

/** An answer the SDK cannot go on from (a status the loop does not expect). */
export class UnexpectedAnswerError extends Error {
  override readonly name = 'UnexpectedAnswerError';

  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`Punchclock answered ${status}`);
  }
}
