/**
 * The streaming scenarios of issue 12: each runs the product on one transport and the raw echo server
 * of the same WebSocket library under the same load, so every figure has a same-run baseline.
 * Frames are 20 ms of 48 kHz stereo s16 (3,840 B) unless `--frame-ms` says otherwise.
 */
import { asrFrontEnd } from '../../test/support/pipelines.js';

export const pipelines = {
  gain: { name: 'gain', nodes: [{ id: 'gain', type: 'gain', params: { db: -6 } }] },
  /** downmix, resample high 48k→16k, gain, normalize, vad */
  asr: asrFrontEnd,
} as const;

export interface Scenario {
  name: string;
  pipeline: keyof typeof pipelines;
  mode: 'paced' | 'closed';
  sessions: number;
  /** Closed loop: frames outstanding per session. */
  inFlight?: number;
  /** The product's transport: `uws` = RT_PORT listener, `ws` = @fastify/websocket on PORT. */
  transport: 'uws' | 'ws';
  /** What the issue asks of it (shown beside the result). */
  goal: string;
}

export const baselineOf = { uws: 'echo-uws', ws: 'echo-ws' } as const;

export const scenarios: Scenario[] = [
  {
    name: 'closed-gain',
    pipeline: 'gain',
    mode: 'closed',
    sessions: 50,
    inFlight: 4,
    transport: 'uws',
    goal: 'frames/s ≥ 0.7× raw uWS echo',
  },
  {
    name: 'closed-asr',
    pipeline: 'asr',
    mode: 'closed',
    sessions: 50,
    inFlight: 4,
    transport: 'uws',
    goal: 'frames/s ≥ 0.5× raw uWS echo',
  },
  {
    // Not one of the goals: the main port's cost per message beside its own echo.
    name: 'closed-gain-ws',
    pipeline: 'gain',
    mode: 'closed',
    sessions: 50,
    inFlight: 4,
    transport: 'ws',
    goal: 'none (the main port beside the raw ws echo)',
  },
  {
    name: 'paced-gain-1000-uws',
    pipeline: 'gain',
    mode: 'paced',
    sessions: 1000,
    transport: 'uws',
    goal: '0 lost, 0 dropped, p99 ≤ 2× echo p99 + 1 ms',
  },
  {
    name: 'paced-asr-500-uws',
    pipeline: 'asr',
    mode: 'paced',
    sessions: 500,
    transport: 'uws',
    goal: '0 lost, p99 ≤ 5 ms',
  },
  {
    name: 'paced-asr-500-ws',
    pipeline: 'asr',
    mode: 'paced',
    sessions: 500,
    transport: 'ws',
    goal: 'p99 ≤ 2× ws echo p99',
  },
];
