/**
 * One error type for the whole engine. `code` is stable and is what callers branch on;
 * it is mapped to HTTP statuses only in api/ and to process exit codes only in cli/.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'PERMISSION_DENIED'
  | 'INTERNAL';

export class HullError extends Error {
  readonly code: ErrorCode;
  /** A one-line suggestion for the user (e.g. which package to install). */
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; hint?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HullError';
    this.code = code;
    this.hint = opts.hint;
  }
}

export const notFound = (msg: string, cause?: unknown) => new HullError('NOT_FOUND', msg, { cause });
export const conflict = (msg: string, cause?: unknown) => new HullError('CONFLICT', msg, { cause });
export const invalid = (msg: string, cause?: unknown) => new HullError('INVALID_ARGUMENT', msg, { cause });
export const precondition = (msg: string, cause?: unknown) =>
  new HullError('FAILED_PRECONDITION', msg, { cause });
export const unavailable = (msg: string, opts: { cause?: unknown; hint?: string } = {}) =>
  new HullError('UNAVAILABLE', msg, opts);

export function isHullError(e: unknown, code?: ErrorCode): e is HullError {
  return e instanceof HullError && (code === undefined || e.code === code);
}

/** The message of any thrown value, for logs and CLI output. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
