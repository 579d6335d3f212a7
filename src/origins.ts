/**
 * The Origin allowlist (`ALLOWED_ORIGINS`), shared by HTTP requests and WebSocket upgrades of both
 * transports. Browsers send `Origin` on cross-origin requests and on every WebSocket handshake
 * (RFC 6455 §4.1, item 8); clients that send none are not browsers and pass.
 */

/** Whether a request with these headers may proceed; an empty allowlist allows everything. */
export function originAllowed(
  allowed: readonly string[],
  headers: Record<string, string | string[] | undefined>,
): boolean {
  if (allowed.length === 0) return true;
  const header = headers.origin;
  const origin = Array.isArray(header) ? header[0] : header;
  if (origin === undefined || origin === '') return true;
  // RFC 6454 §6.2: the serialization is ASCII; scheme and host compare case-insensitively.
  const o = origin.trim().toLowerCase().replace(/\/+$/, '');
  return allowed.some((a) => a.toLowerCase().replace(/\/+$/, '') === o);
}
