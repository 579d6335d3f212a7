import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('config', () => {
  it('has the defaults of SPEC §1', () => {
    const c = loadConfig({}, []);
    expect(c).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      rtPort: 8081,
      pinCores: true,
      apiKeys: [],
      maxFrameBytes: 65536,
      sessionQueueMs: 200,
      maxUploadBytes: 64 * 1024 * 1024,
      maxBodyBytes: 1024 * 1024,
      requestTimeoutMs: 120_000,
      rateLimitPerMin: 6000,
      maxEventLoopDelayMs: 1000,
      allowedOrigins: [],
      startTimeoutMs: 5000,
      idleTimeoutMs: 30_000,
      maxSessionsPerIp: 100,
      heartbeatMs: 15_000,
      workerStallMs: 5000,
    });
    expect(c.workers).toBeGreaterThanOrEqual(1);
    expect(c.dataDir.endsWith('/data')).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads the environment, and flags win over it', () => {
    const c = loadConfig({ PORT: '9000', API_KEYS: 'a, b,,', PIN_CORES: 'false' }, [
      '--port',
      '9001',
      '--rt-port=0',
    ]);
    expect(c.port).toBe(9001);
    expect(c.rtPort).toBe(0);
    expect(c.apiKeys).toEqual(['a', 'b']);
    expect(c.pinCores).toBe(false);
  });

  it('reads the HTTP protection settings', () => {
    const c = loadConfig(
      {
        MAX_BODY_BYTES: '2048',
        REQUEST_TIMEOUT_MS: '0',
        RATE_LIMIT_PER_MIN: '0',
        MAX_EVENT_LOOP_DELAY_MS: '250',
        ALLOWED_ORIGINS: 'https://a.example, http://localhost:3000,',
      },
      ['--rate-limit-per-min', '10'],
    );
    expect(c).toMatchObject({
      maxBodyBytes: 2048,
      requestTimeoutMs: 0,
      rateLimitPerMin: 10,
      maxEventLoopDelayMs: 250,
      allowedOrigins: ['https://a.example', 'http://localhost:3000'],
    });
    expect(Object.isFrozen(c.allowedOrigins)).toBe(true);
  });

  it.each([
    [{ MAX_BODY_BYTES: '10' }, 'MAX_BODY_BYTES'],
    [{ REQUEST_TIMEOUT_MS: '-1' }, 'REQUEST_TIMEOUT_MS'],
    [{ RATE_LIMIT_PER_MIN: 'lots' }, 'RATE_LIMIT_PER_MIN'],
    [{ MAX_EVENT_LOOP_DELAY_MS: '1.5' }, 'MAX_EVENT_LOOP_DELAY_MS'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ WORKERS: '0' }, 'WORKERS'],
    [{ PIN_CORES: 'maybe' }, 'PIN_CORES'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ MAX_FRAME_BYTES: '-1' }, 'MAX_FRAME_BYTES'],
    [{ START_TIMEOUT_MS: '-5' }, 'START_TIMEOUT_MS'],
    [{ IDLE_TIMEOUT_MS: 'never' }, 'IDLE_TIMEOUT_MS'],
    [{ MAX_SESSIONS_PER_IP: '0' }, 'MAX_SESSIONS_PER_IP'],
    [{ HEARTBEAT_MS: '0.5' }, 'HEARTBEAT_MS'],
    [{ WORKER_STALL_MS: '10' }, 'WORKER_STALL_MS'],
  ])('rejects %o naming %s', (env, name) => {
    const attempt = () => loadConfig(env, []);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(new RegExp(`\\b${name}=`));
  });

  it('rejects unknown flags and flags without a value', () => {
    expect(() => loadConfig({}, ['--prot', '1'])).toThrow(/unknown option --prot/);
    expect(() => loadConfig({}, ['--port'])).toThrow(/--port \(PORT\) needs a value/);
  });
});
