const MIN_LENGTH = 8;

/** The reasons a password is too weak; empty when it is acceptable. */
export function passwordProblems(password: string, username: string): string[] {
  const problems: string[] = [];
  if (password.length < MIN_LENGTH) {
    problems.push(`This password is too short. It must contain at least ${MIN_LENGTH} characters.`);
  }
  if (/^\d+$/.test(password)) problems.push('This password is entirely numeric.');
  if (password.trim().length === 0 && password.length > 0) problems.push('This password is only whitespace.');
  if (username && password.toLowerCase() === username.toLowerCase()) {
    problems.push('The password is too similar to the username.');
  }
  return problems;
}
