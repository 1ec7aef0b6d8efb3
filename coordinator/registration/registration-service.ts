/**
 * A provider's registration (R3): check the key, run the durable `provider.register` job, and
 * answer with the certificates. A resend with the same registration id (after a broken
 * connection) waits for the job already started instead of starting another.
 */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type { Logger } from '../../common/log/log.ts';
import type { RegisterReply, RegisterRequest } from '../../common/wire/agent-channel-messages.ts';
import { isFinished, type Job } from '../domain/job.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import { keys, type Store } from '../store/store.ts';
import type { Vault } from '../domain/vault.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { SERVER_NAME_RE, type KeyService } from './key-service.ts';
import type { ProviderCertificates } from './provider-signer.ts';
import { REGISTER_JOB_TYPE, type RegisterJobRequest } from './registration-job.ts';

export function waitForJob(jobs: JobRunner, id: string, signal?: AbortSignal): Promise<Job> {
  return new Promise<Job>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      off();
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const off = jobs.onUpdate((job) => {
      if (job.id === id && isFinished(job.state)) finish(() => resolve(job));
    });
    const onAbort = (): void => finish(() => reject(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    jobs.get(id).then(
      (job) => {
        if (isFinished(job.state)) finish(() => resolve(job));
      },
      (e: unknown) => finish(() => reject(e)),
    );
  });
}

const REG_ID_RE = /^[A-Za-z0-9_-]{16,64}$/;

export class RegistrationService {
  constructor(
    private readonly deps: {
      store: Store;
      keys: KeyService;
      vaults: VaultService;
      jobs: JobRunner;
      log: Logger;
    },
  ) {}

  async register(req: RegisterRequest, signal?: AbortSignal): Promise<RegisterReply> {
    if (!SERVER_NAME_RE.test(req.serverName)) {
      throw badInput('serverName', 'a server name is 1-63 of A-Z, a-z, 0-9, ".", "_" and "-"');
    }
    if (!REG_ID_RE.test(req.registrationId)) throw badInput('registrationId', 'malformed');
    const key = await this.deps.keys.use({
      keyJson: req.keyJson,
      registrationId: req.registrationId,
      serverName: req.serverName,
    });
    const vault = await this.deps.vaults.byId(key.vaultId);
    if (vault === undefined) throw new SecondsiteError('SS_NOT_FOUND', 'the key’s vault is gone');
    const indexKey = keys.registration(vault.id, req.registrationId);
    const indexed = await this.deps.store.get<string>(indexKey);
    // A resend waits for the job already started; after a failed or cancelled one (say, a
    // coordinator fault) the same registration may try again with a new job.
    const previous =
      indexed === undefined ? undefined : await this.deps.jobs.get(indexed).catch(() => undefined);
    const retry =
      previous === undefined || previous.state === 'failed' || previous.state === 'cancelled';
    const jobId = retry ? await this.startJob(req, key.id, vault) : previous.id;
    if (retry) await this.deps.store.put(indexKey, jobId);
    const job = await waitForJob(this.deps.jobs, jobId, signal);
    if (job.state !== 'succeeded') {
      const err = job.error;
      throw err === null
        ? new SecondsiteError('SS_INTERNAL', `registration job ${job.id} ${job.state}`)
        : new SecondsiteError(err.code, `registration job ${job.id}: ${err.message}`, {
            job: job.id,
          });
    }
    const certs = job.steps[0]?.result as ProviderCertificates;
    return {
      vaultId: vault.id,
      vaultName: vault.name,
      serverName: req.serverName,
      clientCertPem: certs.clientCertPem,
      caCertPem: certs.caCertPem,
      rootCaPem: certs.rootCaPem,
      jobId: job.id,
    };
  }

  private async startJob(req: RegisterRequest, keyId: string, vault: Vault): Promise<string> {
    const input: RegisterJobRequest = {
      registrationId: req.registrationId,
      keyId,
      vaultId: vault.id,
      serverName: req.serverName,
      clientCsrPem: req.clientCsrPem,
      caCsrPem: req.caCsrPem,
      version: req.version,
      syncClouds: req.syncClouds === 'CLOUD_SYNC_CHOICE_ALL' ? 'all' : 'none',
      inventory: req.inventory,
    };
    const job = await this.deps.jobs.submit({ vaultId: vault.id, type: REGISTER_JOB_TYPE, input });
    this.deps.log.info({ job: job.id, vault: vault.name, server: req.serverName }, 'registering');
    return job.id;
  }
}
