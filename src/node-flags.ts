/**
 * The Node/V8 flags the server runs with: `npm start`, the Docker image and every harness that starts the
 * server as a separate process use these (test/deploy/manifests.test.ts holds `npm start` and the Dockerfile to them).
 * V8 reads them once, when the process starts, so they cannot be set from inside it.
 *
 * - `--no-memory-reducer`: V8's memory reducer shrinks the heap once allocation slows, with full
 *   collections that stop the process for 10-20 ms at a time, two or three in a row; telephony playback,
 *   paced in 20 ms chunks, turns each into late chunks (docs/telephony/README.md, "Pacing").
 * - `--initial-old-space-size=128`: V8 collects the old generation once it outgrows a limit it sets from
 *   what survived the last collection, ~30 % above it on this server. 500 sessions opening together add
 *   more than that (each holds ~18 KB of JavaScript heap while it streams, and the sessions that ended
 *   before leave theirs as garbage), so every wave of sessions paid a full collection in its first second
 *   of streaming: 15-25 ms of the JavaScript thread, a 20-30 ms stall for every session's frames. Starting
 *   with a 128 MB limit, 14 waves of 500 sessions ran one full collection instead of fourteen; when one
 *   comes, it costs what it did (docs/configuration.md, "Node flags").
 * - `--no-allocation-site-pretenuring`: V8 allocates straight into the old generation the objects of a
 *   literal whose objects it saw survive. While 500 sessions opened on the main port it switched 28
 *   literals so; most of what then reached the old generation came from `ws`'s receive path (such as the
 *   array each socket keeps for a message's fragments, made anew per message; the one made at `start`
 *   lives until the first frame). Every message put short-lived objects there, the old generation grew
 *   ~22 MB/s and a full collection came every 0.7 s, each holding up every session on that port for tens
 *   of ms. Without pretenuring those objects die young, in scavenges of under 1 ms.
 */
export const serverNodeFlags = [
  '--no-memory-reducer',
  '--initial-old-space-size=128',
  '--no-allocation-site-pretenuring',
] as const;
