/**
 * Renews the enrolled host's certificate at half-life without a restart (host_control.proto,
 * renewal steps 1 and 3). When to act is pure (certs/rotation.ts `nextRenewalCheck`); this
 * file only does it: make a new key and CSR here, ask the provider (`renew`, the Renew call
 * over the host's mutual-TLS connection), check the answer, install the files as one step
 * (host-identity.ts `saveRenewedIdentity`) and hand the new material to `onRenewed`, which
 * swaps the credentials of the replication port and clients.
 *
 * A failed attempt is logged and retried with backoff; the old certificate stays installed
 * and in use until a renewal succeeds, so a provider outage costs nothing until it outlasts
 * the certificate's second half.
 *
 * States: waiting → renewing → waiting | backoff → … ; any → closed (shutdown).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeyAndCsr } from '../../../certs/csr.ts';
import { formatIdentity, parseIdentity } from '../../../certs/identity.ts';
import { certFacts, identityFromCertPem } from '../../../certs/inspect.ts';
import {
  DEFAULT_RENEWAL_SCHEDULE,
  halfLife,
  nextRenewalCheck,
  type RenewalSchedule,
} from '../../../certs/rotation.ts';
import { verifyChain } from '../../../certs/verify.ts';
import { isSecondsiteError, SecondsiteError } from '../../../common/errors/errors.ts';
import type { Service } from '../../../common/lifecycle/lifecycle.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { HostRenewReply } from '../../../common/wire/host-control-messages.ts';
import { saveRenewedIdentity, type HostIdentity } from './host-identity.ts';

export type RenewerState = 'waiting' | 'renewing' | 'backoff' | 'closed';

export interface CertStatus {
  readonly state: RenewerState;
  /** The installed certificate's validity and when its renewal is due (ms since the epoch). */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly renewAt: number;
  /** Failed attempts in a row, and the last one's error ('' when none). */
  readonly failures: number;
  readonly lastError: string;
}

export interface CertRenewerOptions {
  readonly dataDir: string;
  readonly identity: HostIdentity;
  /** The provider's Renew call (provider-client.ts). */
  readonly renew: (csrPem: string) => Promise<HostRenewReply>;
  /** The new identity is installed: swap credentials. Must not throw. */
  readonly onRenewed: (id: HostIdentity) => void;
  readonly clock: Clock;
  readonly log: Logger;
  /** @default DEFAULT_RENEWAL_SCHEDULE */
  readonly schedule?: RenewalSchedule;
}

export interface CertRenewer extends Service {
  status(): CertStatus;
  current(): HostIdentity;
}

/** The provider's answer must be a certificate for our new key and identity, chained to a CA we trust. */
function checkReply(id: HostIdentity, keyPem: string, r: HostRenewReply, now: number): void {
  // Verified against the bundle the host already trusts: a renewal cannot bring a new root.
  const chain = verifyChain(r.certPem + r.intermediatePem, [id.caPem], now);
  if (!chain.ok) {
    throw new SecondsiteError('SS_CERT_INVALID', `renewed certificate refused: ${chain.message}`);
  }
  const got = formatIdentity(identityFromCertPem(r.certPem));
  if (got !== id.info.identity) {
    throw new SecondsiteError('SS_CERT_INVALID', `renewed for ${got}, not ${id.info.identity}`);
  }
  if (!new X509Certificate(r.certPem).checkPrivateKey(createPrivateKey(keyPem))) {
    throw new SecondsiteError('SS_CERT_INVALID', 'the renewed certificate is not for our key');
  }
}

export function createCertRenewer(o: CertRenewerOptions): CertRenewer {
  const log = o.log.child({ component: 'cert-renewer' });
  const schedule = o.schedule ?? DEFAULT_RENEWAL_SCHEDULE;
  const stop = new AbortController();
  let current = o.identity;
  let state: RenewerState = 'waiting';
  let failures = 0;
  let lastError = '';
  const validity = (): { notBefore: number; notAfter: number } => certFacts(current.certPem);

  async function renewOnce(): Promise<void> {
    const { keyPem, csrPem } = createKeyAndCsr({ identity: parseIdentity(current.info.identity) });
    const reply = await o.renew(csrPem);
    checkReply(current, keyPem, reply, o.clock.now());
    const material = {
      keyPem,
      certPem: reply.certPem + reply.intermediatePem,
      caPem: reply.caBundlePem,
    };
    await saveRenewedIdentity(o.dataDir, material);
    current = { ...current, ...material };
    o.onRenewed(current);
    const v = validity();
    log.info(
      {
        notAfter: new Date(v.notAfter).toISOString(),
        renewAt: new Date(halfLife(v)).toISOString(),
      },
      'host certificate renewed',
    );
  }

  async function run(signal: AbortSignal): Promise<void> {
    const aborted = AbortSignal.any([signal, stop.signal]);
    while (!aborted.aborted) {
      const now = o.clock.now();
      const at = nextRenewalCheck(validity(), now, failures, schedule);
      // Waiting for the half-life, never longer than a check period: the clock may jump
      // (suspend, NTP). Backing off after a failure, the whole delay, then the retry.
      const wait = failures > 0 ? at - now : Math.min(at - now, schedule.checkEveryMs);
      if (wait > 0) await sleep(wait, undefined, { signal: aborted }).catch(() => undefined);
      if (aborted.aborted) break;
      if (failures > 0 || wait <= 0) await attempt();
    }
    state = 'closed';
  }

  async function attempt(): Promise<void> {
    state = 'renewing';
    try {
      await renewOnce();
      failures = 0;
      lastError = '';
      state = 'waiting';
    } catch (e) {
      failures++;
      lastError = isSecondsiteError(e) ? `${e.code}: ${e.message}` : String(e);
      state = 'backoff';
      const v = validity();
      log.warn(
        { failures, err: lastError, notAfter: new Date(v.notAfter).toISOString() },
        'certificate renewal failed; the current certificate stays in use',
      );
    }
  }

  return {
    run,
    async shutdown() {
      stop.abort();
    },
    current: () => current,
    status() {
      const v = validity();
      return { state, ...v, renewAt: halfLife(v), failures, lastError };
    },
  };
}
