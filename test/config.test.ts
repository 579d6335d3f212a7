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

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ WORKERS: '0' }, 'WORKERS'],
    [{ PIN_CORES: 'maybe' }, 'PIN_CORES'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ MAX_FRAME_BYTES: '-1' }, 'MAX_FRAME_BYTES'],
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
