/** The web view's errors. */
import { FalconError, isFalconError, type FalconErrorCode } from '../util/errors.js';

/** A request the web view refuses, with the HTTP status it answers. */
export class WebRequestError extends FalconError {
  override name = 'WebRequestError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('WEB_REQUEST', message);
  }
}

const STATUS: Partial<Record<FalconErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  CAPTURE_ENDPOINT: 400,
  IMPAIR_TARGET: 400,
  TOPOLOGY_INVALID: 400,
  NODE_NOT_FOUND: 404,
  NODE_NOT_LAUNCHED: 409,
  NODE_NOT_RUNNING: 409,
  EXEC_NOT_RUNNING: 409,
  LOCK_BUSY: 409,
  EXEC_TIMEOUT: 504,
};

/** The HTTP status for an error a route threw: a refused request's own, else by code (500 when unknown). */
export function httpStatusOf(e: unknown): number {
  if (e instanceof WebRequestError) return e.status;
  if (isFalconError(e)) return STATUS[e.code] ?? 500;
  return 500;
}
