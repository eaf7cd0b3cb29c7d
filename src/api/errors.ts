/**
 * HullError.code -> HTTP status, and docker's JSON error body. This is the only place the
 * engine's error codes meet HTTP.
 */
import { type ErrorCode, HullError, errorMessage } from '../errors.js';

const STATUS: Record<ErrorCode, number> = {
  NOT_FOUND: 404,
  CONFLICT: 409,
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 409,
  UNAVAILABLE: 503,
  PERMISSION_DENIED: 403,
  INTERNAL: 500,
};

/** An error that carries its own HTTP status (413, 304, 501 ...), for cases no HullError code names. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Status for any thrown value: HttpError's own, HullError's code, else 500. */
export function statusOf(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  if (e instanceof HullError) return STATUS[e.code] ?? 500;
  return 500;
}

/** docker's error body: {"message": "..."}. */
export function errorBody(e: unknown): { message: string } {
  return { message: errorMessage(e) };
}
