/**
 * Transport callbacks never throw out: an exception inside a uWebSockets.js callback ends the process, and
 * one inside a `ws` listener becomes an uncaught exception. Whatever fails is logged, and the session it
 * belongs to (if any) is closed 1011 and counted; every other session goes on (SPEC §9).
 */
import type { RealtimeDeps, StreamSession } from '../session.js';

export function guarded(
  deps: RealtimeDeps,
  callback: string,
  session: StreamSession | undefined,
  fn: () => void,
): void {
  try {
    fn();
  } catch (err) {
    deps.log?.warn({ err, callback, session: session?.id }, 'realtime transport callback failed');
    if (session === undefined) return;
    deps.metrics?.handlerError(session.transport);
    try {
      session.fail('RM_ERR_INTERNAL', 'the server failed to handle this session');
    } catch {
      session.onClose();
    }
  }
}
