/**
 * Preloaded into each server the load test starts (`node --import ./loadtest/probe.mjs …`): measures
 * the server's event-loop delay and answers the orchestrator over the IPC channel.
 *   { probe: 'reset' }  → starts a new measurement window
 *   { probe: 'report' } → { probe: 'report', eld_ms: { p50, p99, max } }
 * Does nothing when the process has no IPC channel.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

if (typeof process.send === 'function') {
  const resolutionMs = 5;
  const eld = monitorEventLoopDelay({ resolution: resolutionMs });
  eld.enable();
  // Delay beyond the sampling interval, which the histogram counts in.
  const ms = (ns) => Math.max(0, Math.round((ns / 1e6 - resolutionMs) * 1e3) / 1e3);
  process.on('message', (m) => {
    if (m?.probe === 'reset') {
      eld.reset();
    } else if (m?.probe === 'report') {
      process.send?.({
        probe: 'report',
        eld_ms: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max) },
      });
    }
  });
  // The channel must not keep the process alive: the server's own handles do.
  process.channel?.unref();
}
