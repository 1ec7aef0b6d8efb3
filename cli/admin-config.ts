/**
 * How admin commands find the coordinator (CLI.md "Finding the coordinator"): the admin.json
 * named by --config, else $SECONDSITE_CONFIG, else ./admin.json. The file carries the URL, the
 * coordinator's CA certificate and the admin token; the HTTPS connection trusts exactly that
 * CA (through an undici Agent), not the system's roots.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Agent, fetch as undiciFetch } from 'undici';
import { z } from 'zod';
import { createApiClient, type ApiClient, type FetchLike } from '../common/api-client/index.ts';
import { badInput } from '../common/errors/errors.ts';

export const CONFIG_ENV = 'SECONDSITE_CONFIG';

const adminFileSchema = z
  .object({ url: z.string().url(), caCertPem: z.string().min(1), adminToken: z.string().min(1) })
  .strict();

export type AdminConfig = z.infer<typeof adminFileSchema>;

export function resolveConfigPath(flag: string | undefined, env = process.env): string {
  // An empty variable counts as unset, as shells make it easy to export one by accident.
  return resolve(flag ?? (env[CONFIG_ENV] || undefined) ?? 'admin.json');
}

export function loadAdminConfig(flag: string | undefined, env = process.env): AdminConfig {
  const path = resolveConfigPath(flag, env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw badInput(
      'config',
      code === 'ENOENT'
        ? `no admin file at ${path}; pass --config FILE or set ${CONFIG_ENV} (coordinator start writes <data>/admin.json)`
        : `cannot read ${path}: ${code ?? String(e)}`,
      { path },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw badInput('config', `${path} is not JSON`, { path });
  }
  const parsed = adminFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badInput('config', `${path}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`, {
      path,
    });
  }
  return parsed.data;
}

/** A fetch that trusts only the coordinator's CA. */
export function fetchTrusting(caCertPem: string): { fetch: FetchLike; close(): Promise<void> } {
  const agent = new Agent({ connect: { ca: caCertPem } });
  return {
    fetch: async (url, init) => {
      const res = await undiciFetch(url, { ...init, dispatcher: agent });
      return { status: res.status, text: () => res.text() };
    },
    close: () => agent.close(),
  };
}

/** Runs `fn` with a client for the configured coordinator and closes its connections after. */
export async function withApiClient<T>(
  configFlag: string | undefined,
  fn: (client: ApiClient) => Promise<T>,
): Promise<T> {
  const config = loadAdminConfig(configFlag);
  const transport = fetchTrusting(config.caCertPem);
  try {
    return await fn(
      createApiClient({ url: config.url, token: config.adminToken, fetch: transport.fetch }),
    );
  } finally {
    // Closing only drops idle connections; a failure there cannot change the outcome.
    await transport.close().catch(() => undefined);
  }
}

export interface AdminFlags {
  readonly json?: boolean;
  readonly config?: string;
}

/** The flags every admin command takes. */
export function withAdminFlags(cmd: Command): Command {
  return cmd
    .option('--json', 'print one JSON document on stdout')
    .option('--config <file>', `admin.json to use (default: $${CONFIG_ENV}, else ./admin.json)`);
}
