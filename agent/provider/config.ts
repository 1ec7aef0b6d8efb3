/**
 * The provider's options (CLI.md "Processes"), validated and compiled once into a frozen shape.
 * Contradictory options are named together.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { badInput } from '../../common/errors/errors.ts';

export interface ProviderConfig {
  /** Absolute data folder: identity, keys, answered commands, host-join-token. */
  readonly dataDir: string;
  /** Absolute path of the site file. */
  readonly sitePath: string;
  /** Registration key file; needed only at the first start. */
  readonly keyPath: string | undefined;
  /** Friendly server name; @default the site file's "server" */
  readonly name: string | undefined;
  /** Clouds synced at registration. @default 'all' */
  readonly syncClouds: 'all' | 'none';
  /** HTTP CONNECT proxy to reach the coordinator through. @default none (direct) */
  readonly proxy: URL | undefined;
  /** Where hosts enrol (host enrolment is served by a later step). @default 127.0.0.1:8443 */
  readonly listen: { readonly host: string; readonly port: number };
}

const optionsSchema = z
  .object({
    data: z.string().min(1, 'the data folder is required'),
    site: z.string().min(1, 'the site file is required'),
    key: z.string().min(1).optional(),
    name: z.string().min(1).optional(),
    syncClouds: z.enum(['all', 'none']).default('all'),
    proxy: z.string().optional(),
    listen: z.string().default('127.0.0.1:8443'),
  })
  .strict();

export type ProviderOptions = z.input<typeof optionsSchema>;

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65535) {
    throw badInput('listen', `"${text}" is not HOST:PORT (example: 127.0.0.1:8443)`);
  }
  return { host, port };
}

function parseProxy(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badInput('proxy', `"${text}" is not a URL (example: http://proxy.example:3128)`);
  }
  if (url.protocol !== 'http:') {
    throw badInput('proxy', 'only http:// proxies (HTTP CONNECT) are supported');
  }
  return url;
}

export function compileProviderConfig(opts: ProviderOptions): ProviderConfig {
  const parsed = optionsSchema.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badInput(issue?.path.join('.') || 'options', issue?.message ?? 'invalid');
  }
  const o = parsed.data;
  return Object.freeze({
    dataDir: resolve(o.data),
    sitePath: resolve(o.site),
    keyPath: o.key === undefined ? undefined : resolve(o.key),
    name: o.name,
    syncClouds: o.syncClouds,
    proxy: o.proxy === undefined ? undefined : parseProxy(o.proxy),
    listen: Object.freeze(parseListen(o.listen)),
  });
}
