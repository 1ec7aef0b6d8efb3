/**
 * First start: register with the key file (enrollment.proto gives the numbered flow). The key
 * pairs and CSRs are made here and kept in pending.json before anything is sent, so a retry
 * after a crash or a broken connection sends the same registration id and CSRs.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import { createKeyAndCsr } from '../../../certs/csr.ts';
import { providerIdentity, formatIdentity } from '../../../certs/identity.ts';
import { fingerprintOfPem } from '../../../certs/inspect.ts';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import {
  agentChannelCodec,
  decodeEnvelope,
  errorFromDetail,
  type RegisterReply,
  type SiteInventoryMsg,
} from '../../../common/wire/agent-channel-messages.ts';
import {
  registrationKeyFileSchema,
  type RegistrationKeyFile,
} from '../../../common/wire/registration-key.ts';
import {
  loadPending,
  savePending,
  saveIdentity,
  type PendingRegistration,
  type StoredIdentity,
} from '../../common/identity-store.ts';
import { openCoordinatorSocket, type OpenSocket } from '../channel/coordinator-socket.ts';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from '../domain/backoff.ts';

export async function readKeyFile(
  path: string,
): Promise<{ key: RegistrationKeyFile; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw badInput('key', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SecondsiteError(
      'SS_KEY_INVALID',
      `${path} is not a registration key file (not JSON)`,
    );
  }
  const parsed = registrationKeyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.code === 'unrecognized_keys' ? issue.keys[0] : issue?.path.join('.');
    throw new SecondsiteError(
      'SS_KEY_INVALID',
      `${path} is not a valid registration key file (${field}: ${issue?.message}); download a new key`,
      { field },
    );
  }
  return { key: parsed.data, text };
}

async function pendingFor(
  dataDir: string,
  key: RegistrationKeyFile,
  serverName: string,
): Promise<PendingRegistration> {
  const existing = await loadPending(dataDir);
  if (existing && existing.keyId === key.keyId && existing.serverName === serverName)
    return existing;
  const identity = providerIdentity(key.vault, serverName.toLowerCase());
  const client = createKeyAndCsr({ identity });
  const ca = createKeyAndCsr({ identity });
  const pending: PendingRegistration = {
    registrationId: randomBytes(18).toString('base64url'),
    keyId: key.keyId,
    serverName,
    clientKeyPem: client.keyPem,
    clientCsrPem: client.csrPem,
    caKeyPem: ca.keyPem,
    caCsrPem: ca.csrPem,
  };
  await savePending(dataDir, pending);
  return pending;
}

function exchange(ws: OpenSocket['ws'], frame: Buffer): Promise<RegisterReply> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer) => {
      try {
        const env = decodeEnvelope(data);
        if ('registered' in env && env.body === 'registered') resolve(env.registered);
        else if ('error' in env && env.body === 'error') reject(errorFromDetail(env.error));
        else reject(new SecondsiteError('SS_PROTOCOL', `unexpected ${env.body ?? 'empty'} frame`));
      } catch (e) {
        reject(e);
      }
    });
    ws.once('close', () =>
      reject(new SecondsiteError('SS_UNAVAILABLE', 'the coordinator closed the connection')),
    );
    ws.send(frame);
  });
}

export async function register(a: {
  dataDir: string;
  keyText: string;
  key: RegistrationKeyFile;
  serverName: string;
  version: string;
  syncClouds: 'all' | 'none';
  inventory: SiteInventoryMsg;
  proxy?: URL;
  now: () => number;
  log: Logger;
}): Promise<StoredIdentity> {
  const pending = await pendingFor(a.dataDir, a.key, a.serverName);
  const { ws, pinnedCaPem } = await openCoordinatorSocket({
    coordinatorUrl: a.key.coordinatorUrl,
    trust: { mode: 'pin', fingerprint: a.key.caFingerprint },
    ...(a.proxy === undefined ? {} : { proxy: a.proxy }),
    now: a.now,
  });
  try {
    const frame = agentChannelCodec().encode({
      register: {
        keyJson: a.keyText,
        registrationId: pending.registrationId,
        serverName: a.serverName,
        clientCsrPem: pending.clientCsrPem,
        caCsrPem: pending.caCsrPem,
        version: a.version,
        syncClouds: a.syncClouds === 'all' ? 'CLOUD_SYNC_CHOICE_ALL' : 'CLOUD_SYNC_CHOICE_NONE',
        inventory: a.inventory,
      },
    });
    const reply = await exchange(ws, frame);
    // The root the coordinator names must be the one we pinned, or the reply is not to be trusted.
    if (pinnedCaPem === undefined || fingerprintOfPem(reply.rootCaPem) !== a.key.caFingerprint) {
      throw new SecondsiteError(
        'SS_FINGERPRINT_MISMATCH',
        'the coordinator answered with another root CA',
      );
    }
    const identity: StoredIdentity = {
      info: {
        vault: reply.vaultName,
        vaultId: reply.vaultId,
        name: reply.serverName,
        identity: formatIdentity(providerIdentity(reply.vaultName, reply.serverName.toLowerCase())),
        coordinatorUrl: a.key.coordinatorUrl,
        caFingerprint: a.key.caFingerprint,
        registeredAt: new Date(a.now()).toISOString(),
      },
      clientKeyPem: pending.clientKeyPem,
      clientCertPem: reply.clientCertPem,
      caKeyPem: pending.caKeyPem,
      caCertPem: reply.caCertPem,
      rootCaPem: reply.rootCaPem,
    };
    await saveIdentity(a.dataDir, identity);
    a.log.info(
      { vault: reply.vaultName, server: reply.serverName, job: reply.jobId },
      'registered',
    );
    return identity;
  } finally {
    ws.terminate();
  }
}

/**
 * register() again while the coordinator is unreachable or the connection broke mid-way (the
 * same registration id makes the retry safe); any refusal is final.
 */
export async function registerWithRetry(
  a: Parameters<typeof register>[0] & { signal?: AbortSignal; backoff?: BackoffOptions },
): Promise<StoredIdentity> {
  // A function, so TypeScript does not narrow the flag across the await below.
  const aborted = (): boolean => a.signal?.aborted === true;
  for (let attempt = 0; ; attempt++) {
    try {
      return await register(a);
    } catch (e) {
      const retry = e instanceof SecondsiteError && e.code === 'SS_UNAVAILABLE';
      if (!retry || aborted()) throw e;
      const delay = backoffDelay(attempt, Math.random(), a.backoff ?? DEFAULT_BACKOFF);
      a.log.warn(
        { attempt, why: e.message, retryInMs: delay },
        'registration: coordinator unreachable',
      );
      await sleep(delay, undefined, a.signal ? { signal: a.signal } : {}).catch(() => undefined);
      if (aborted()) throw e;
    }
  }
}
