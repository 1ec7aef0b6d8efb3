/**
 * V8 flags the product's processes start with. bin/secondsite.mjs's shebang carries the same
 * list (node-flags.test.ts holds the two together); every place that starts a host agent or
 * its stand-in with `process.execPath` (demo, tests, bench) puts them first.
 *
 * --initial-old-space-size=256: moving disk bytes allocates a fresh buffer per HTTP/2 read
 * and per gRPC message (grpc-js and Node's http2 do, not our code), about 3 GB per GB copied
 * on the replica. Node's default heap configuration answers that external memory with full
 * mark-compacts: measured on a 2 GiB initial copy (bench/scenarios/initial-copy.ts), 80–95 per
 * copy on the replica, and on the source none in some copies and 45–110 in others, which then
 * took 4–5 CPU-s instead of about 2. With the initial old generation at 256 MB V8 skips full
 * collections below it: 0–8 per copy. The cost is memory: garbage may grow to about 256 MB
 * before it is collected (measured: 200–270 MB resident after a copy, each side).
 */
export const NODE_FLAGS: readonly string[] = Object.freeze(['--initial-old-space-size=256']);

/** What a host agent started without NODE_FLAGS logs (a warning), for people and tests. */
export const NODE_FLAGS_WARNING =
  'node was started without the flags the secondsite executable gives it: copies and ' +
  'resyncs will spend much of their CPU collecting garbage (agent/host/node-flags.ts)';

/** Whether this process started with NODE_FLAGS (`host start` warns when it did not). */
export function hasNodeFlags(execArgv: readonly string[] = process.execArgv): boolean {
  return NODE_FLAGS.every((f) => execArgv.includes(f));
}
