/**
 * The provider's vault-limited CA across rotations (docs/security.md, CA rotation): which
 * generation signs host certificates now, the bundle its hosts trust, and the service that
 * rotates it. When is pure (../domain/ca-generations.ts); this file does it:
 *
 *  1. prepare (current's half-life): make a new key and a CSR for the provider's own identity
 *     HERE, ask the coordinator to sign it over the authenticated agent channel
 *     (agent_channel.proto step 8), check the answer (chains to the root, our key, our
 *     identity), store it as next-ca.* (key 0600, each file atomic), publish {current, next};
 *  2. activate (current's 5/6): the successor signs enrolments, renewals and the provider's
 *     own server certificate; `onChange` fires so the server certificate is re-signed;
 *  3. retire (current's notAfter): the successor is copied over ca.* and the old one leaves
 *     the bundle.
 * `onChange` fires whenever the signing CA or the bundle changes; the caller pushes the
 * bundle to the hosts and re-signs its server certificate.
 *
 * A key made for a request that failed is dropped (a retry makes another): nothing was
 * signed for it. A failure is retried at the next check; the current CA goes on signing.
 *
 * States: waiting → preparing → waiting; any → closed (shutdown).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeyAndCsr } from '../../../certs/csr.ts';
import { BACKDATE_MS } from '../../../certs/forge-pki.ts';
import { formatIdentity, parseIdentity } from '../../../certs/identity.ts';
import { certFacts, fingerprintOfPem, identityFromCertPem } from '../../../certs/inspect.ts';
import type { Validity } from '../../../certs/rotation.ts';
import { verifyChain } from '../../../certs/verify.ts';
import { isSecondsiteError, SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import {
  loadNextCa,
  promoteNextCa,
  saveNextCa,
  type CaPair,
  type StoredIdentity,
} from '../../common/identity-store.ts';
import { nextCaEvent, providerCaStep, signingGeneration } from '../domain/ca-generations.ts';

/** What enrolment and renewal need: the CA that signs now and the bundle hosts trust. */
export interface SigningCa {
  signing(): CaPair;
  /** The vault root, then the provider's CAs still valid (current, next). */
  bundle(): string;
}

export interface ProviderCaOptions {
  readonly dataDir: string;
  readonly identity: StoredIdentity;
  /** Step 1's request to the coordinator (agent-channel-client.ts); resolves the CA PEM. */
  readonly requestSuccessor: (caCsrPem: string) => Promise<string>;
  /** The signing CA or the bundle changed. Must not throw. */
  readonly onChange: () => void;
  readonly now: () => number;
  readonly log: Logger;
  /** How often the CA is looked at besides its own events. @default 60000 */
  readonly checkEveryMs?: number;
}

/** A CA's life as issued: its notBefore is backdated for skew (certs/forge-pki.ts). */
function issuedLife(pem: string): Validity {
  const f = certFacts(pem);
  return { notBefore: Math.min(f.notBefore + BACKDATE_MS, f.notAfter), notAfter: f.notAfter };
}

export class ProviderCa implements SigningCa {
  private current: CaPair;
  private next: CaPair | undefined;
  private lastSeen = '';
  private readonly stop = new AbortController();
  private readonly log: Logger;

  private constructor(private readonly o: ProviderCaOptions) {
    this.current = { certPem: o.identity.caCertPem, keyPem: o.identity.caKeyPem };
    this.log = o.log.child({ component: 'provider-ca' });
  }

  /** Loads the generations and finishes a retirement that is due (or a crash interrupted). */
  static async open(o: ProviderCaOptions): Promise<ProviderCa> {
    const ca = new ProviderCa(o);
    ca.next = await loadNextCa(o.dataDir);
    await ca.retireIfDue();
    ca.lastSeen = ca.fingerprintOfState();
    return ca;
  }

  signing(): CaPair {
    const { current, next } = this;
    const which = signingGeneration(
      issuedLife(current.certPem),
      next && issuedLife(next.certPem),
      this.o.now(),
    );
    return which === 'next' && next ? next : current;
  }

  bundle(): string {
    // The original PEM texts: hosts and tests compare them with what else they were sent.
    const now = this.o.now();
    const cas = [this.current, ...(this.next ? [this.next] : [])]
      .map((c) => c.certPem)
      .filter((pem) => certFacts(pem).notAfter > now);
    return [this.o.identity.rootCaPem, ...cas].join('');
  }

  async run(signal: AbortSignal): Promise<void> {
    const aborted = AbortSignal.any([signal, this.stop.signal]);
    const every = this.o.checkEveryMs ?? 60_000;
    while (!aborted.aborted) {
      await this.tick().catch((e: unknown) => {
        const why = isSecondsiteError(e) ? `${e.code}: ${e.message}` : String(e);
        this.log.warn({ err: why }, 'CA rotation step failed; retried at the next check');
      });
      const now = this.o.now();
      const at = nextCaEvent(
        issuedLife(this.current.certPem),
        this.next && issuedLife(this.next.certPem),
        now,
      );
      const wait = Math.max(1, Math.min(every, (at ?? now + every) - now));
      await sleep(wait, undefined, { signal: aborted }).catch(() => undefined);
    }
  }

  async shutdown(): Promise<void> {
    this.stop.abort();
  }

  private async tick(): Promise<void> {
    const now = this.o.now();
    const next = this.next && issuedLife(this.next.certPem);
    if (providerCaStep(issuedLife(this.current.certPem), next, now) === 'prepare') {
      await this.prepare();
    }
    await this.retireIfDue();
    const seen = this.fingerprintOfState();
    if (seen !== this.lastSeen) {
      this.lastSeen = seen;
      this.log.info(
        { signing: fingerprintOfPem(this.signing().certPem).slice(0, 16) },
        'provider CA changed',
      );
      this.o.onChange();
    }
  }

  /** What hosts and the server certificate depend on: the signer and the bundle. */
  private fingerprintOfState(): string {
    return `${fingerprintOfPem(this.signing().certPem)}|${this.bundle()}`;
  }

  private async prepare(): Promise<void> {
    const identity = parseIdentity(this.o.identity.info.identity);
    const { keyPem, csrPem } = createKeyAndCsr({ identity });
    const certPem = await this.o.requestSuccessor(csrPem);
    const now = this.o.now();
    const chain = verifyChain(certPem, [this.o.identity.rootCaPem], now);
    if (!chain.ok) {
      throw new SecondsiteError('SS_CERT_INVALID', `successor CA refused: ${chain.message}`);
    }
    if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) {
      throw new SecondsiteError('SS_CERT_INVALID', 'the successor CA is not for our key');
    }
    if (formatIdentity(identityFromCertPem(certPem)) !== this.o.identity.info.identity) {
      throw new SecondsiteError('SS_CERT_INVALID', 'the successor CA names another identity');
    }
    await saveNextCa(this.o.dataDir, { certPem, keyPem });
    this.next = { certPem, keyPem };
    this.log.info(
      { notAfter: new Date(certFacts(certPem).notAfter).toISOString() },
      'successor CA prepared',
    );
  }

  private async retireIfDue(): Promise<void> {
    const next = this.next;
    if (next === undefined) return;
    const step = providerCaStep(
      issuedLife(this.current.certPem),
      issuedLife(next.certPem),
      this.o.now(),
    );
    if (step !== 'retire') return;
    await promoteNextCa(this.o.dataDir, next);
    this.current = next;
    this.next = undefined;
    this.log.info('the old CA expired; its successor is now the current CA');
  }
}
