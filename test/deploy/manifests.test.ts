/**
 * The deployment files (deploy/k8s, deploy/compose, the Dockerfile, `npm start`) agree with the server: the
 * Node flags it runs with are src/node-flags.ts's, every setting they pass is one
 * the server accepts, ports and probes match its configuration, the grace periods cover preStop + drain,
 * resource requests cover MAX_SESSIONS at the per-session cost measured in bench/stream-round1.json, and the
 * compose balancer runs the directives the multi-instance test exercises.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type Config, loadConfig, settingNames } from '../../src/config.js';
import { serverNodeFlags } from '../../src/node-flags.js';
import { haproxyConfig, haproxyPath } from '../cluster/processes.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const k8sDir = join(root, 'deploy/k8s');

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
type Doc = any;

function load(path: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { merge: true });
  for (const doc of docs) expect(doc.errors, path).toEqual([]);
  return docs.map((doc) => doc.toJS());
}

const manifests = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) => load(join(k8sDir, file)).map((doc) => ({ file, doc })));

function one(kind: string, name?: string): Doc {
  const found = manifests.filter(
    (m) => m.doc.kind === kind && (name === undefined || m.doc.metadata?.name === name),
  );
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0]?.doc;
}

/** `500m` → 500, `"2"` → 2000. */
function millicores(value: string | number): number {
  const s = String(value);
  return s.endsWith('m') ? Number(s.slice(0, -1)) : Number(s) * 1000;
}

/** `384Mi` → 384, `1Gi` → 1024 (MiB). */
function mebibytes(value: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(value);
  if (!m) throw new Error(`unsupported quantity ${value}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

const seconds = (s: string) => Number(/^(\d+)s$/.exec(s)?.[1] ?? Number.NaN);

/** Per-session cost of the 5-node pipeline, from the paced streaming runs (the dearer transport). */
function perSessionCost(): { cpuMillicores: number; memoryMiB: number; baseMiB: number } {
  const bench = JSON.parse(readFileSync(join(root, 'bench/stream-round1.json'), 'utf8'));
  type Row = {
    target: string;
    report: { sessions: { held: number } };
    server: { cpu_pct: number; rss_mb: number };
  };
  const rows = (key: string) => bench[key].median as Row[];
  let cpu = 0;
  let memory = 0;
  let base = 0;
  for (const target of ['uws', 'ws']) {
    const small = rows('paced-100').find((r) => r.target === target) as Row;
    const large = rows('paced-500').find((r) => r.target === target) as Row;
    const held = [small.report.sessions.held, large.report.sessions.held] as const;
    cpu = Math.max(cpu, (large.server.cpu_pct * 10) / held[1]);
    const perSession = (large.server.rss_mb - small.server.rss_mb) / (held[1] - held[0]);
    memory = Math.max(memory, perSession);
    base = Math.max(base, small.server.rss_mb - perSession * held[0]);
  }
  return { cpuMillicores: cpu, memoryMiB: memory, baseMiB: base };
}

describe('Kubernetes manifests (deploy/k8s)', () => {
  const configMap = one('ConfigMap', 'remotemedia');
  const secret = one('Secret', 'remotemedia');
  const deployment = one('Deployment', 'remotemedia');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const config: Config = loadConfig({ ...configMap.data, ...secret.stringData }, []);

  it('parse, and the kustomization lists every file', () => {
    for (const { file, doc } of manifests) {
      expect(doc.apiVersion, file).toEqual(expect.any(String));
      expect(doc.kind, file).toEqual(expect.any(String));
    }
    const kustomization = one('Kustomization');
    const files = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
  });

  it('pass only settings the server knows, with values it accepts', () => {
    const secretKeys = Object.keys(secret.stringData).filter((k) => k !== 'POSTGRES_PASSWORD');
    for (const key of [...Object.keys(configMap.data), ...secretKeys]) expect(settingNames).toContain(key);
    for (const env of container.env) {
      expect(settingNames).toContain(env.name);
      expect(secret.stringData[env.valueFrom.secretKeyRef.key], env.name).toBeDefined();
    }
    expect(container.envFrom).toEqual([{ configMapRef: { name: 'remotemedia' } }]);
    expect(config.storeUrl).toMatch(/^postgres:\/\//);
    expect(config.host).toBe('0.0.0.0');
  });

  it('probe /readyz and /healthz on the port the server listens on', () => {
    const ports = Object.fromEntries(container.ports.map((p: Doc) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: config.port, rt: config.rtPort });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
  });

  it('give a stopping pod longer than preStop + DRAIN_DELAY_MS + SHUTDOWN_GRACE_MS', () => {
    const [command, sleep] = container.lifecycle.preStop.exec.command;
    expect(command).toBe('sleep');
    const needMs = Number(sleep) * 1000 + config.drainDelayMs + config.shutdownGraceMs;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(needMs);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('request the resources MAX_SESSIONS sessions cost (bench/stream-round1.json), and one worker per core', () => {
    const cost = perSessionCost();
    const { requests, limits } = container.resources;
    expect(millicores(requests.cpu)).toBeGreaterThanOrEqual(config.maxSessions * cost.cpuMillicores);
    const perSessionMiB = cost.memoryMiB + config.resumeBufferBytes / 2 ** 20; // + the replay log (docs/protocol.md §8)
    expect(mebibytes(requests.memory)).toBeGreaterThanOrEqual(
      cost.baseMiB + config.maxSessions * perSessionMiB,
    );
    expect(mebibytes(limits.memory)).toBeGreaterThanOrEqual(mebibytes(requests.memory));
    expect(config.workers * 1000).toBe(millicores(limits.cpu));
    // Behind the ingress every session comes from its address: the per-IP cap must not be the limit.
    expect(config.maxSessionsPerIp).toBeGreaterThanOrEqual(config.maxSessions);
  });

  it('select the same pods in the Deployment, the Service and the PodDisruptionBudget', () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    const service = one('Service', 'remotemedia');
    expect(service.spec.selector).toEqual(labels);
    expect(service.spec.ports.map((p: Doc) => p.targetPort).sort()).toEqual(['http', 'rt']);
    const pdb = one('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pdb.spec.maxUnavailable).toBeLessThan(deployment.spec.replicas);
  });

  it('route WebSocket upgrades through the ingress with timeouts above IDLE_TIMEOUT_MS', () => {
    const ingress = one('Ingress');
    const a = ingress.metadata.annotations;
    for (const key of ['proxy-read-timeout', 'proxy-send-timeout']) {
      expect(Number(a[`nginx.ingress.kubernetes.io/${key}`]) * 1000).toBeGreaterThan(config.idleTimeoutMs);
    }
    expect(a['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
    const backend = ingress.spec.rules[0].http.paths[0].backend.service;
    expect(backend).toEqual({ name: 'remotemedia', port: { name: 'http' } });
  });

  it('run the PostgreSQL that STORE_URL names', () => {
    const url = new URL(config.storeUrl);
    const statefulSet = one('StatefulSet', 'remotemedia-postgres');
    expect(one('Service', url.hostname).spec.selector).toEqual(statefulSet.spec.template.metadata.labels);
    const env = Object.fromEntries(
      statefulSet.spec.template.spec.containers[0].env.map((e: Doc) => [
        e.name,
        e.value ?? secret.stringData[e.valueFrom.secretKeyRef.key],
      ]),
    );
    expect(env.POSTGRES_USER).toBe(url.username);
    expect(env.POSTGRES_PASSWORD).toBe(url.password);
    expect(env.POSTGRES_DB).toBe(url.pathname.slice(1));
    expect(Number(url.port)).toBe(5432);
  });
});

describe('docker compose (deploy/compose)', () => {
  const [compose] = load(join(root, 'deploy/compose/compose.yaml'));
  const cfgPath = join(root, 'deploy/compose/haproxy.cfg');

  it('runs two instances on the compose PostgreSQL with settings the server accepts', () => {
    const instances = Object.keys(compose.services).filter((s) => s.startsWith('remotemedia-'));
    expect(instances).toHaveLength(2);
    const pg = compose.services.postgres.environment;
    for (const name of instances) {
      const service = compose.services[name];
      const config = loadConfig(service.environment, []);
      const url = new URL(config.storeUrl);
      expect([url.hostname, url.username, url.password, url.pathname]).toEqual([
        'postgres',
        pg.POSTGRES_USER,
        pg.POSTGRES_PASSWORD,
        `/${pg.POSTGRES_DB}`,
      ]);
      expect(seconds(service.stop_grace_period) * 1000).toBeGreaterThan(
        config.drainDelayMs + config.shutdownGraceMs,
      );
      // HAProxy takes an instance out after one failed check: the drain delay outlasts the interval.
      const inter = /inter (\d+)s/.exec(readFileSync(cfgPath, 'utf8'))?.[1];
      expect(config.drainDelayMs).toBeGreaterThan(Number(inter) * 1000);
    }
    expect(compose.services.haproxy.volumes).toContain('./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
  });

  it('balances with the directives the multi-instance test runs', () => {
    /** The directives, without what differs by design: addresses, servers, check timing, DNS. */
    const directives = (cfg: string) =>
      cfg
        .split('\n')
        .map((line) => line.replace(/#.*/, '').trim())
        .filter((line) => line && !/^(bind|server |nameserver|resolvers|default-server|maxconn)/.test(line));
    const tested = haproxyConfig(1, 2, [{ name: 'i0', port: 3 }]);
    expect(directives(readFileSync(cfgPath, 'utf8'))).toEqual(directives(tested));
  });

  it.skipIf(haproxyPath() === undefined)('is a valid HAProxy configuration', () => {
    const out = execFileSync(haproxyPath() as string, ['-c', '-f', cfgPath], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
    expect(out).toMatch(/Configuration file is valid/);
  });
});

describe('Node flags (src/node-flags.ts)', () => {
  it('are the ones `npm start` and the Docker image run the server with', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts.start).toBe(`node ${serverNodeFlags.join(' ')} dist/cli.js serve`);
    const entrypoint = /^ENTRYPOINT (.*)$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))?.[1];
    expect(JSON.parse(entrypoint ?? 'null')).toEqual(['node', ...serverNodeFlags, 'dist/cli.js']);
  });

  it('are accepted by this Node', () => {
    // Node exits 9 ("bad option") on a V8 flag its V8 does not know: this fails on a Node that dropped one.
    const run = (flags: readonly string[]) =>
      execFileSync(process.execPath, [...flags, '-e', 'process.stdout.write("ok")'], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    expect(run(serverNodeFlags)).toBe('ok');
    expect(() => run(['--initial-old-space-sizes=128'])).toThrow(/bad option/);
  });
});
