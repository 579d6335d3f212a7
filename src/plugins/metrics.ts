/**
 * Prometheus metrics (docs/rest.md `GET /metrics`, latency as in docs/engine.md): one prom-client registry per app, with the
 * default process metrics and our `remotemedia_*` series.
 *
 * Two kinds of sources:
 * - observed as they happen: HTTP request durations (onResponse hook) and, through the
 *   `RealtimeMetrics` hooks the sessions call, frames, drops and end-to-end frame latency;
 * - read at scrape time from the engine: queue wait and per-node-type processing time, which each
 *   worker counts at fixed bounds as it goes (native/dsp/src/tally.rs), so a scrape costs the same
 *   with one session or thousands.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from 'prom-client';
import { type BucketCounts, engineBucketSeconds } from '../native.js';
import { providerNames } from '../realtime/providers/wire.js';
import type { RealtimeMetrics } from '../realtime/session.js';

/** End-to-end frame latency buckets: 0.1 ms to 1 s. */
const FRAME_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const TRANSPORTS = ['ws', 'uws'] as const;

type Labels = Record<string, string>;
type Sample = { labels: Record<string, string | number>; value: number; metricName: string };

/**
 * A Prometheus histogram fed with bulk increments of its cumulative bucket counts, for sources that
 * keep their own histograms (the engine). Exposed through the registry's `get()` contract.
 */
class BulkHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<
    string,
    { labels: Labels; cumulative: number[]; sum: number; count: number }
  >();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly upperBounds: readonly number[],
    private readonly beforeCollect: () => void,
  ) {}

  /** Adds observations: per bound, how many more were at or below it; plus their sum and count. */
  add(labels: Labels, cumulative: readonly number[], sum: number, count: number): void {
    const key = JSON.stringify(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels, cumulative: this.upperBounds.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < cumulative.length; i++)
      s.cumulative[i] = (s.cumulative[i] ?? 0) + (cumulative[i] ?? 0);
    s.sum += sum;
    s.count += count;
  }

  async get() {
    this.beforeCollect();
    const values: Sample[] = [];
    for (const s of this.series.values()) {
      this.upperBounds.forEach((le, i) => {
        values.push({
          labels: { le, ...s.labels },
          value: s.cumulative[i] ?? 0,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

/**
 * Frame counts and end-to-end latencies of one transport, tallied on the per-frame path for the
 * price of a few additions (prom-client's `inc` + `observe` cost microseconds per frame: label
 * hashing and validation) and handed to Prometheus at scrape time.
 */
class FrameTally {
  /** Per bucket of FRAME_BUCKETS (not cumulative), then one past the last bound. */
  private readonly buckets = new Float64Array(FRAME_BUCKETS.length + 1);
  private sum = 0;
  private count = 0;

  record(latencySeconds: number): void {
    let b = 0;
    while (b < FRAME_BUCKETS.length && latencySeconds > (FRAME_BUCKETS[b] as number)) b++;
    this.buckets[b] = (this.buckets[b] as number) + 1;
    this.sum += latencySeconds;
    this.count += 1;
  }

  /** Moves what was tallied since the last call into the counter and the histogram. */
  flush(labels: Labels, counter: Counter, histogram: BulkHistogram): void {
    let below = 0;
    const cumulative = FRAME_BUCKETS.map((_, i) => (below += this.buckets[i] as number));
    histogram.add(labels, cumulative, this.sum, this.count);
    counter.inc(labels, this.count);
    this.buckets.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

export interface AppMetrics {
  readonly registry: Registry;
  /** Hooks for the realtime sessions (passed to the realtime plugin). */
  readonly realtime: RealtimeMetrics;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: AppMetrics;
  }
}

export const metricsPlugin = fp(
  async (app: FastifyInstance) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });

    const httpDuration = new Histogram({
      name: 'remotemedia_http_request_duration_seconds',
      help: 'HTTP request duration, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers: [registry],
    });
    const tallies = new Map(TRANSPORTS.map((t) => [t as string, new FrameTally()]));
    const flushTallies = () => {
      for (const [transport, tally] of tallies) tally.flush({ transport }, frames, frameLatency);
    };
    const frames: Counter = new Counter({
      name: 'remotemedia_frames_total',
      help: 'Audio frames (binary messages) answered by streaming sessions',
      labelNames: ['transport'],
      registers: [registry],
      collect: flushTallies,
    });
    const dropped = new Counter({
      name: 'remotemedia_frames_dropped_total',
      help: 'Audio frames dropped because they waited longer than SESSION_QUEUE_MS for the engine',
      labelNames: ['transport'],
      registers: [registry],
    });
    const frameLatency = new BulkHistogram(
      'remotemedia_frame_latency_seconds',
      'End-to-end frame latency: binary message received to its answer sent',
      FRAME_BUCKETS,
      flushTallies,
    );
    const handlerErrors = new Counter({
      name: 'remotemedia_session_handler_errors_total',
      help: 'Sessions closed 1011 because answering their engine output threw (other sessions went on)',
      labelNames: ['transport'],
      registers: [registry],
    });
    new Counter({
      name: 'remotemedia_engine_dispatch_errors_total',
      help: 'Exceptions the engine caught from an output handler (that session was closed)',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(app.engine.dispatchErrors);
      },
    });
    for (const transport of TRANSPORTS) {
      frames.inc({ transport }, 0);
      dropped.inc({ transport }, 0);
      handlerErrors.inc({ transport }, 0);
    }
    new Gauge({
      name: 'remotemedia_sessions_active',
      help: 'Streaming sessions open now, by transport',
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        const counts = new Map<string, number>(TRANSPORTS.map((t) => [t, 0]));
        for (const s of app.realtime.sessions.values()) {
          counts.set(s.transport, (counts.get(s.transport) ?? 0) + 1);
        }
        for (const [transport, n] of counts) this.set({ transport }, n);
      },
    });

    // docs/telephony/README.md: telephony calls per provider (calls, DTMF, bad provider messages, barge-ins, sink outages).
    const telephony = new Counter({
      name: 'remotemedia_telephony_events_total',
      help: 'Telephony call events by provider: call, dtmf, provider_error, cleared, interrupted, sink_down',
      labelNames: ['provider', 'event'],
      registers: [registry],
    });
    const lateness = new Histogram({
      name: 'remotemedia_telephony_playback_lateness_seconds',
      help: 'How long after its 20 ms deadline each playback chunk left for the provider (early counts as 0), by provider',
      labelNames: ['provider'],
      buckets: [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05],
      registers: [registry],
    });
    new Gauge({
      name: 'remotemedia_telephony_calls_active',
      help: 'Telephony calls open now, by provider',
      labelNames: ['provider'],
      registers: [registry],
      collect() {
        const counts = new Map<string, number>(providerNames.map((p) => [p, 0]));
        for (const call of app.realtime.calls.values()) {
          counts.set(call.providerName, (counts.get(call.providerName) ?? 0) + 1);
        }
        for (const [provider, n] of counts) this.set({ provider }, n);
      },
    });

    // The engine's own totals since it started (5 µs to 1 s), replaced at each scrape.
    const engineBuckets = engineBucketSeconds();
    const total = (h: BulkHistogram, labels: Labels, b: BucketCounts) =>
      h.add(labels, b.counts, b.sumSeconds, b.count);
    const queueWait: BulkHistogram = new BulkHistogram(
      'remotemedia_engine_queue_wait_seconds',
      'Time a frame waited in its session queue before a native worker took it',
      engineBuckets,
      () => {
        queueWait.reset();
        total(queueWait, {}, app.engine.buckets().queueWait);
      },
    );
    const handbackWait: BulkHistogram = new BulkHistogram(
      'remotemedia_engine_handback_wait_seconds',
      'Time a native worker, its batch of answers full, waited for the event loop to take the batch before it (its frames wait meanwhile)',
      engineBuckets,
      () => {
        handbackWait.reset();
        total(handbackWait, {}, app.engine.buckets().handbackWait);
      },
    );
    const nodeProcess: BulkHistogram = new BulkHistogram(
      'remotemedia_node_process_seconds',
      'Processing time of one frame in one node, by node type',
      engineBuckets,
      () => {
        nodeProcess.reset();
        for (const n of app.engine.buckets().nodes) total(nodeProcess, { node_type: n.type }, n.process);
      },
    );
    // The registry formats any object with this shape; prom-client's types only name its own classes.
    registry.registerMetric(frameLatency as unknown as Metric);
    registry.registerMetric(queueWait as unknown as Metric);
    registry.registerMetric(handbackWait as unknown as Metric);
    registry.registerMetric(nodeProcess as unknown as Metric);

    app.addHook('onResponse', async (request, reply) => {
      httpDuration.observe(
        {
          method: request.method,
          // The route pattern, not the URL: ids would make one series per pipeline. 404s share one.
          route: request.routeOptions.url ?? 'unmatched',
          status: String(reply.statusCode),
        },
        reply.elapsedTime / 1000,
      );
    });

    app.decorate('metrics', {
      registry,
      realtime: {
        frame: (transport, latencySeconds) => tallies.get(transport)?.record(latencySeconds),
        dropped: (transport, n) => dropped.inc({ transport }, n),
        handlerError: (transport) => handlerErrors.inc({ transport }),
        telephony: (provider, event) => telephony.inc({ provider, event }),
        playbackLateness: (provider, ms) => lateness.observe({ provider }, Math.max(0, ms) / 1000),
      },
    });
  },
  { name: 'remotemedia-metrics' },
);
