/**
 * Errors as containerd reads them: a ttrpc Response carries a google.rpc.Status whose code is a
 * gRPC code, and containerd's errdefs.FromGRPC turns NotFound, AlreadyExists,
 * FailedPrecondition, InvalidArgument, Unavailable and Unimplemented into its own error kinds
 * (ctr and the CRI plugin branch on those: a kill of a finished task is NotFound, which the CRI
 * plugin ignores; an exec id in use is AlreadyExists). The one place HullError codes become
 * gRPC codes.
 */
import { HullError } from '../errors.js';

export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** An error with an explicit gRPC code (for the few answers HullError has no code for). */
export class RpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'RpcError';
  }
}

export const unimplemented = (what: string) => new RpcError(Code.UNIMPLEMENTED, `${what}: not implemented by the hull shim`);

const FROM_HULL: Record<HullError['code'], number> = {
  NOT_FOUND: Code.NOT_FOUND,
  CONFLICT: Code.ALREADY_EXISTS,
  INVALID_ARGUMENT: Code.INVALID_ARGUMENT,
  FAILED_PRECONDITION: Code.FAILED_PRECONDITION,
  UNAVAILABLE: Code.UNAVAILABLE,
  PERMISSION_DENIED: Code.PERMISSION_DENIED,
  INTERNAL: Code.INTERNAL,
};

/** Pure: the status a thrown value is answered with. */
export function statusOf(e: unknown): { code: number; message: string } {
  if (e instanceof RpcError) return { code: e.code, message: e.message };
  if (e instanceof HullError) return { code: FROM_HULL[e.code] ?? Code.UNKNOWN, message: e.message };
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const message = e instanceof Error ? e.message : String(e);
  if (errno === 'ENOENT') return { code: Code.NOT_FOUND, message };
  if (errno === 'EEXIST') return { code: Code.ALREADY_EXISTS, message };
  if (errno === 'EACCES' || errno === 'EPERM') return { code: Code.PERMISSION_DENIED, message };
  return { code: Code.UNKNOWN, message };
}
