/**
 * V8 flags the product's processes start with. bin/secondsite.mjs's shebang carries the same
 * list (node-flags.test.ts holds the two together); every place that starts a host agent or
 * its stand-in with `process.execPath` (demo, tests, bench) puts them first.
 *
 * --initial-old-space-size=256: moving disk bytes allocates a fresh buffer per HTTP/2 read
 * and per gRPC message (grpc-js and Node's http2 do, not our code), 3 GB per GB copied on the
 * replica. Node's default heap configuration answers that external memory with a full
 * mark-compact every 30–50 MB: measured (bench/scenarios/initial-copy.ts, 2 GiB copy), 80–110
 * of them per copy on each side, up to 2.5 s of CPU, half the copy's CPU on this 2-core
 * machine. With the initial old generation at 256 MB V8 skips full collections below it:
 * 0–8 per copy. The cost is memory: garbage may grow to about 256 MB before it is collected.
 */
export const NODE_FLAGS: readonly string[] = Object.freeze(['--initial-old-space-size=256']);

/** Whether this process started with NODE_FLAGS (`host start` warns when it did not). */
export function hasNodeFlags(execArgv: readonly string[] = process.execArgv): boolean {
  return NODE_FLAGS.every((f) => execArgv.includes(f));
}
