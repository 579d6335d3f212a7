/**
 * The error catalog: every stable code the server can answer with, its HTTP status and title.
 * REST errors are RFC 9457 problem+json built from these; WebSocket errors carry the same codes.
 * Tests assert `.code`, never message text.
 */

export const errorCatalog = {
  RM_ERR_CONFIG: { status: 500, title: 'Invalid configuration' },
  RM_ERR_BAD_AUDIO: { status: 400, title: 'Audio could not be decoded' },
  RM_ERR_NOT_FOUND: { status: 404, title: 'Route not found' },
  RM_ERR_BAD_WAV: { status: 415, title: 'Not a supported WAV file' },
  RM_ERR_BAD_FORMAT: { status: 422, title: 'Unsupported stream format' },
  RM_ERR_BAD_ENCODING: { status: 422, title: 'Unknown sample encoding' },
  RM_ERR_BAD_PLAN: { status: 422, title: 'The engine cannot build this plan' },
  RM_ERR_BAD_PARAMS: { status: 422, title: 'Invalid node parameters' },
  RM_ERR_BAD_FRAME: { status: 400, title: 'Malformed audio message' },
  RM_ERR_SESSION_CLOSED: { status: 409, title: 'Session has ended' },
  RM_ERR_SESSION_FAILED: { status: 500, title: 'Session failed' },
  RM_ERR_UNAUTHORIZED: { status: 401, title: 'Unauthorized' },
  RM_ERR_DRAINING: { status: 503, title: 'Server is shutting down' },
  RM_ERR_TOO_MANY_SESSIONS: { status: 503, title: 'Too many sessions' },
  RM_ERR_NATIVE: { status: 500, title: 'Native engine failure' },
  RM_ERR_PIPELINE_NOT_FOUND: { status: 404, title: 'Pipeline not found' },
  RM_ERR_PRECONDITION_FAILED: { status: 412, title: 'Pipeline version does not match If-Match' },
  RM_ERR_BAD_CURSOR: { status: 400, title: 'Invalid pagination cursor' },
  RM_ERR_STORE_BUSY: { status: 503, title: 'Pipeline store is busy' },
  RM_ERR_STORE: { status: 500, title: 'Pipeline store failure' },
  RM_ERR_INTERNAL: { status: 500, title: 'Internal server error' },
  RM_ERR_INVALID_PIPELINE: { status: 422, title: 'Invalid pipeline document' },
  RM_ERR_BAD_REQUEST: { status: 400, title: 'Invalid request' },
  RM_ERR_PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  RM_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported content type' },
  RM_ERR_ORIGIN: { status: 403, title: 'Origin not allowed' },
  RM_ERR_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  RM_ERR_OVERLOADED: { status: 503, title: 'Server is overloaded' },
  RM_ERR_SESSION_NOT_FOUND: { status: 404, title: 'Session not found' },
  // The realtime protocol (SPEC §4): sent in `error` messages, with the same titles as REST problems.
  RM_ERR_BAD_JSON: { status: 400, title: 'Message is not valid JSON' },
  RM_ERR_BAD_MESSAGE: { status: 400, title: 'Invalid message' },
  RM_ERR_UNKNOWN_MESSAGE: { status: 400, title: 'Unknown message type' },
  RM_ERR_BAD_UTF8: { status: 400, title: 'Text message is not valid UTF-8' },
  RM_ERR_MESSAGE_TOO_BIG: { status: 413, title: 'Message too big' },
  RM_ERR_NOT_STARTED: { status: 409, title: 'Session has not started' },
  RM_ERR_ALREADY_STARTED: { status: 409, title: 'Session has already started' },
  RM_ERR_FORMAT_CONFLICT: { status: 422, title: 'Pipeline cannot take this input format' },
  RM_ERR_START_TIMEOUT: { status: 408, title: 'No start message in time' },
  RM_ERR_TOO_MANY_SESSIONS_PER_IP: { status: 429, title: 'Too many sessions from this address' },
  RM_ERR_WORKER_STALLED: { status: 503, title: 'Native worker stopped responding' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalog;

/** An error with a stable code from the catalog. */
export class RemoteMediaError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RemoteMediaError';
    this.code = code;
    this.status = errorCatalog[code].status;
  }
}

/** `code` when it is in the catalog (the engine reports codes as strings), else `fallback`. */
export function catalogCode(code: string | undefined, fallback: ErrorCode): ErrorCode {
  return code !== undefined && code in errorCatalog ? (code as ErrorCode) : fallback;
}

/** Errors thrown by the native addon carry `RM_ERR_*` codes in `code`; lift them into the catalog. */
export function fromNative(err: unknown): RemoteMediaError {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in errorCatalog) {
    return new RemoteMediaError(code as ErrorCode, message, { cause: err });
  }
  return new RemoteMediaError('RM_ERR_NATIVE', message, { cause: err });
}
