import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('config', () => {
  it('has the defaults of docs/configuration.md', () => {
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

  it('reads the docs/limits.md bounds and MAX_CONCURRENT_JOBS', () => {
    const defaults = loadConfig({ WORKERS: '3' }, []);
    expect(defaults).toMatchObject({
      maxSessionMemoryBytes: 64 * 1024 * 1024,
      maxSessionOpsPerSec: 1_000_000_000,
      maxEventsPerSec: 1000,
      maxConcurrentJobs: 6,
    });
    const c = loadConfig(
      { MAX_SESSION_MEMORY_BYTES: '2097152', MAX_SESSION_OPS_PER_SEC: '5000000', MAX_EVENTS_PER_SEC: '10' },
      ['--max-concurrent-jobs', '2'],
    );
    expect(c).toMatchObject({
      maxSessionMemoryBytes: 2097152,
      maxSessionOpsPerSec: 5_000_000,
      maxEventsPerSec: 10,
      maxConcurrentJobs: 2,
    });
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
    [{ MAX_SESSION_MEMORY_BYTES: '1000' }, 'MAX_SESSION_MEMORY_BYTES'],
    [{ MAX_SESSION_OPS_PER_SEC: 'fast' }, 'MAX_SESSION_OPS_PER_SEC'],
    [{ MAX_EVENTS_PER_SEC: '0' }, 'MAX_EVENTS_PER_SEC'],
    [{ MAX_CONCURRENT_JOBS: '0' }, 'MAX_CONCURRENT_JOBS'],
  ])('rejects %o naming %s', (env, name) => {
    const attempt = () => loadConfig(env, []);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(new RegExp(`\\b${name}=`));
  });

  it('reads the store settings (README.md "Deployment") and refuses a STORE_URL that is not PostgreSQL', () => {
    expect(loadConfig({}, [])).toMatchObject({
      storeUrl: '',
      storePoolMax: 10,
      storeStatementTimeoutMs: 5000,
      storeConnectTimeoutMs: 5000,
      drainDelayMs: 0,
      resumeGraceMs: 30_000,
      resumeBufferBytes: 256 * 1024,
    });
    const c = loadConfig({ STORE_URL: 'postgres://rm:pw@db:5432/rm', STORE_POOL_MAX: '4' }, [
      '--store-statement-timeout-ms',
      '250',
    ]);
    expect(c).toMatchObject({
      storeUrl: 'postgres://rm:pw@db:5432/rm',
      storePoolMax: 4,
      storeStatementTimeoutMs: 250,
    });
    expect(loadConfig({ STORE_URL: 'postgresql://db/rm' }, []).storeUrl).toBe('postgresql://db/rm');
    for (const [name, value] of [
      ['STORE_URL', 'mysql://db/rm'],
      ['STORE_URL', '/var/lib/db'],
      ['STORE_POOL_MAX', '0'],
      ['STORE_POOL_MAX', '1001'],
      ['STORE_STATEMENT_TIMEOUT_MS', '99'],
      ['STORE_CONNECT_TIMEOUT_MS', '600001'],
      ['DRAIN_DELAY_MS', '600001'],
      ['DRAIN_DELAY_MS', '-1'],
      ['RESUME_GRACE_MS', '3600001'],
      ['RESUME_BUFFER_BYTES', '1023'],
    ] as const) {
      expect(() => loadConfig({ [name]: value }, []), `${name}=${value}`).toThrow(new RegExp(name));
    }
  });

  it('rejects unknown flags and flags without a value', () => {
    expect(() => loadConfig({}, ['--prot', '1'])).toThrow(/unknown option --prot/);
    expect(() => loadConfig({}, ['--port'])).toThrow(/--port \(PORT\) needs a value/);
  });
});
