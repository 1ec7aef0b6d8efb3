/**
 * The coordinator's options, validated and compiled once into a frozen shape (STYLE.md rule
 * 6). Flags are the only source for now; a config file and environment layer slot in here.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { badInput } from '../common/errors/errors.ts';

export const DEFAULT_LISTEN = '127.0.0.1:9443';

export interface CoordinatorConfig {
  /** Absolute path of the data folder (store, keys, admin.json). */
  readonly dataDir: string;
  /** Where the HTTPS API listens. @default 127.0.0.1:9443 (port 0 picks a free port) */
  readonly listen: { readonly host: string; readonly port: number };
  /** Registers the test-only job type and route. @default false (SECONDSITE_TEST_JOBS=1) */
  readonly testJobs: boolean;
  /**
   * How often providers send heartbeats; a server is disconnected after 3 missed ones.
   * @default 5000 (SECONDSITE_HEARTBEAT_MS overrides it; tests use less)
   */
  readonly heartbeatMs: number;
  /**
   * Multiplies the copy interval pushed to hosts and every health duration (0.01-1). Tests and
   * the demo's fast mode use less than 1 so 30 s cycles run in seconds. @default 1
   * (SECONDSITE_TIME_SCALE)
   */
  readonly timeScale: number;
  /**
   * Appends every message the coordinator receives (agent channel frames, API request bodies)
   * to this file, mode 0600: the privacy test (R32) searches it for disk contents. Off unless
   * SECONDSITE_TRACE_MESSAGES names a file.
   */
  readonly traceFile: string | undefined;
  /**
   * Health counts missed cycles over this window (Hyper-V Replica's monitoring interval).
   * @default 1 hour (SECONDSITE_MONITORING_WINDOW, a duration such as 30s or 2h)
   */
  readonly monitoringWindowMs: number;
}

const optionsSchema = z
  .object({
    data: z.string().min(1, 'the data folder is required'),
    listen: z.string().default(DEFAULT_LISTEN),
    testJobs: z.boolean().default(false),
    heartbeatMs: z.number().int().min(50).max(600_000).default(5000),
    timeScale: z.number().min(0.01).max(1).default(1),
    traceFile: z.string().min(1).optional(),
    monitoringWindowMs: z
      .number()
      .int()
      .min(10_000)
      .max(7 * 86_400_000)
      .default(3_600_000),
  })
  .strict();

export type CoordinatorOptions = z.input<typeof optionsSchema>;

/** "HOST:PORT" or "[IPv6]:PORT" → parts; the port may be 0 (any free port). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65535) {
    throw badInput('listen', `"${text}" is not HOST:PORT (example: 127.0.0.1:9443)`);
  }
  if (m?.[1] !== undefined && isIP(host) !== 6) throw badInput('listen', `${host} is not IPv6`);
  return { host, port };
}

export function compileConfig(opts: CoordinatorOptions): CoordinatorConfig {
  const parsed = optionsSchema.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badInput(issue?.path.join('.') || 'options', issue?.message ?? 'invalid');
  }
  return Object.freeze({
    dataDir: resolve(parsed.data.data),
    listen: Object.freeze(parseListen(parsed.data.listen)),
    testJobs: parsed.data.testJobs,
    heartbeatMs: parsed.data.heartbeatMs,
    timeScale: parsed.data.timeScale,
    monitoringWindowMs: parsed.data.monitoringWindowMs,
    traceFile: parsed.data.traceFile === undefined ? undefined : resolve(parsed.data.traceFile),
  });
}
