/**
 * The one client of the public REST API (STYLE.md rule 11), used by the CLI and the portal.
 * Browser-safe: no `node:` imports; the transport is an injected fetch, so the CLI can pass
 * one that trusts the coordinator's own CA. Error bodies are rebuilt into the typed
 * SecondsiteError from their code; a refused connection becomes SS_UNAVAILABLE.
 */
import { ERROR_CATALOGUE } from '../errors/catalogue.ts';
import { SecondsiteError, type ErrorCode } from '../errors/errors.ts';
import type { JobView, VaultView } from './types.ts';

/** The subset of the WHATWG fetch the client needs. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<{ status: number; text(): Promise<string> }>;

export interface ApiClientOptions {
  /** Base URL of the coordinator, e.g. https://127.0.0.1:9443 */
  readonly url: string;
  readonly token: string;
  /** @default globalThis.fetch (a browser, or Node trusting only the system's roots) */
  readonly fetch?: FetchLike;
}

export interface ApiClient {
  createVault(name: string): Promise<VaultView>;
  listVaults(): Promise<VaultView[]>;
  getVault(name: string): Promise<VaultView>;
  listJobs(vault: string): Promise<JobView[]>;
  getJob(id: string): Promise<JobView>;
  resumeJob(id: string): Promise<JobView>;
  cancelJob(id: string): Promise<JobView>;
  /** Test-only route, present when the coordinator runs with SECONDSITE_TEST_JOBS=1. */
  startTestJob(vault: string, input: unknown): Promise<JobView>;
}

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}

/** Rebuilds the typed error from an error body; anything unrecognised is SS_PROTOCOL. */
export function errorFromResponse(status: number, text: string): SecondsiteError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const err = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })?.error;
  if (err !== undefined && isErrorCode(err.code)) {
    const details =
      typeof err.details === 'object' && err.details !== null
        ? (err.details as Record<string, unknown>)
        : {};
    return new SecondsiteError(err.code, String(err.message ?? err.code), details);
  }
  return new SecondsiteError('SS_PROTOCOL', `unexpected HTTP ${status} from the coordinator`, {
    status,
  });
}

export function createApiClient(opts: ApiClientOptions): ApiClient {
  const base = opts.url.replace(/\/+$/, '');
  const fetchFn: FetchLike = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${opts.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await fetchFn(`${base}/api/v1${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      const why =
        e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : '';
      throw new SecondsiteError(
        'SS_UNAVAILABLE',
        `cannot reach the coordinator at ${base}${why ? `: ${why}` : ''}`,
        { url: base },
        { cause: e },
      );
    }
    const text = await res.text();
    if (res.status >= 400) throw errorFromResponse(res.status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new SecondsiteError('SS_PROTOCOL', 'the coordinator answered with invalid JSON', {
        status: res.status,
      });
    }
  }

  const seg = encodeURIComponent;
  return {
    createVault: (name) => call('POST', '/vaults', { name }),
    listVaults: async () => (await call<{ vaults: VaultView[] }>('GET', '/vaults')).vaults,
    getVault: (name) => call('GET', `/vaults/${seg(name)}`),
    listJobs: async (vault) =>
      (await call<{ jobs: JobView[] }>('GET', `/jobs?vault=${seg(vault)}`)).jobs,
    getJob: (id) => call('GET', `/jobs/${seg(id)}`),
    resumeJob: (id) => call('POST', `/jobs/${seg(id)}/resume`),
    cancelJob: (id) => call('POST', `/jobs/${seg(id)}/cancel`),
    startTestJob: (vault, input) => call('POST', '/test/jobs', { vault, input }),
  };
}
