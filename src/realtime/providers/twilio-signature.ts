/**
 * Twilio request validation ("Webhooks security", twilio.com/docs/usage/security#validating-requests):
 * `X-Twilio-Signature` is base64(HMAC-SHA1(auth token, full URL + each POST parameter name and value,
 * sorted by name)). A Media Streams WebSocket upgrade is a GET, so the string signed is the URL alone,
 * with its query. Twilio dials `wss://`; behind a TLS-terminating proxy the request arrives as plain
 * HTTP, so both schemes are tried with the Host the client used (or `X-Forwarded-Host` from the proxy).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function twilioSignature(authToken: string, url: string, params: Record<string, string> = {}): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => acc + key + params[key], url);
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Checks the signature of an upgrade request for `pathAndQuery`. Never throws. */
export function verifyTwilioUpgrade(
  authToken: string,
  headers: Record<string, string | string[] | undefined>,
  pathAndQuery: string,
): boolean {
  const presented = header(headers, 'x-twilio-signature');
  if (presented === undefined || presented.length === 0 || presented.length > 128) return false;
  const given = Buffer.from(presented);
  const hosts = [header(headers, 'x-forwarded-host'), header(headers, 'host')].filter(
    (h): h is string => h !== undefined && h.length > 0 && h.length <= 255,
  );
  for (const host of hosts) {
    for (const scheme of ['wss', 'ws']) {
      const expected = Buffer.from(twilioSignature(authToken, `${scheme}://${host}${pathAndQuery}`));
      if (expected.length === given.length && timingSafeEqual(expected, given)) return true;
    }
  }
  return false;
}
