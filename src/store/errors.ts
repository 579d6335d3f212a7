/** The one error class of every store; `code` (from src/errors.ts) says what went wrong. */
import { type ErrorCode, RemoteMediaError } from '../errors.js';

export type StoreErrorCode = Extract<
  ErrorCode,
  | 'RM_ERR_PIPELINE_NOT_FOUND'
  | 'RM_ERR_PRECONDITION_FAILED'
  | 'RM_ERR_BAD_CURSOR'
  | 'RM_ERR_STORE_BUSY'
  | 'RM_ERR_STORE'
>;

const storeCodes: ReadonlySet<string> = new Set<StoreErrorCode>([
  'RM_ERR_PIPELINE_NOT_FOUND',
  'RM_ERR_PRECONDITION_FAILED',
  'RM_ERR_BAD_CURSOR',
  'RM_ERR_STORE_BUSY',
  'RM_ERR_STORE',
]);

export function isStoreErrorCode(code: unknown): code is StoreErrorCode {
  return typeof code === 'string' && storeCodes.has(code);
}

/** Every error the store throws; `code` says which (tests and routes look at `code` only). */
export class StoreError extends RemoteMediaError {
  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}
