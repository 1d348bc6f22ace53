/** Errors a user can fix (bad options, bad input), as opposed to programming errors. */

/** An error the user can fix: printed without a stack trace, exit code 2 (usage) or 1. */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "UserError";
  }
}

/** Fails a command with a message that says what went wrong and what to do next. */
export function fail(message: string, exitCode = 1): never {
  throw new UserError(message, exitCode);
}
