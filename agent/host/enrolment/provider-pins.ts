/**
 * The provider CAs this host pins, kept across a rotation of the provider's CA. The decision
 * is pure (../domain/provider-pin.ts: which successor may be pinned, rules 1-5); this file
 * reads the facts, stores the result and serves the live pins to every connection check
 * (provider-tls.ts `checkProvider`).
 *
 * A successor is learned only over the authenticated provider link: the provider's
 * set_trust_bundle command (host_control.proto HostCommand 32) or a Renew answer's bundle.
 * Either way the bundle is the vault root followed by the provider's CAs (current, next).
 * It is taken whole or not at all: one refused CA refuses the bundle and changes nothing.
 *
 * Stored: host.json `providerCaPins` (fingerprint + notAfter of each pinned CA), then ca.pem
 * rewritten as root + the pinned CAs still valid (each file atomic; a crash between leaves
 * pins whose CA is missing from ca.pem, harmless: the root anchors chains, the next push
 * writes it again).
 */
import { caFacts } from '../../../certs/ca-facts.ts';
import { fingerprintOfPem } from '../../../certs/inspect.ts';
import { certificatesOf, withoutExpired } from '../../../certs/trust-bundle.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { decidePin, livePins, type PinnedCa } from '../domain/provider-pin.ts';
import { savePins, type HostIdentity, type HostIdentityInfo } from './host-identity.ts';

/** A pin whose CA the host never saw (cannot happen after enrolment): kept until replaced. */
const NO_END = Number.MAX_SAFE_INTEGER;

export class ProviderPins {
  private info: HostIdentityInfo;
  private caPem: string;
  private pins: readonly PinnedCa[];
  private readonly provider: string;
  /** The bundle is applied one at a time (a push and a renewal may race). */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataDir: string,
    identity: HostIdentity,
    private readonly clock: Clock,
  ) {
    this.info = identity.info;
    this.caPem = identity.caPem;
    const known = [...certificatesOf(identity.caPem), ...certificatesOf(identity.certPem)];
    const now = clock.now();
    const facts = known.map((pem) => caFacts(pem, [], now));
    const enrolled = facts.find((f) => f.fingerprint === identity.info.providerCaFingerprint);
    this.pins = identity.info.providerCaPins ?? [
      { fingerprint: identity.info.providerCaFingerprint, notAfter: enrolled?.notAfter ?? NO_END },
    ];
    const pinned = facts.find((f) => this.pins.some((p) => p.fingerprint === f.fingerprint));
    this.provider = pinned?.uris[0] ?? '';
  }

  /** Fingerprints of the CAs pinned now (an expired CA's pin has lapsed). */
  fingerprints(): string[] {
    const live = livePins(this.pins, this.clock.now());
    return (live.length > 0 ? live : this.pins).map((p) => p.fingerprint);
  }

  /** The trust bundle in force: root then the pinned CAs (ca.pem). */
  bundle(): string {
    return this.caPem;
  }

  /**
   * Pins the successors a bundle (root + provider CAs) brings; throws SS_CERT_INVALID,
   * changing nothing, when any CA of it may not be pinned. Resolves with the new ca.pem.
   */
  apply(bundlePem: string): Promise<string> {
    const run = this.tail.then(() => this.applyNow(bundlePem));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async applyNow(bundlePem: string): Promise<string> {
    const now = this.clock.now();
    const [root, ...cas] = certificatesOf(bundlePem);
    const ourRoot = certificatesOf(this.caPem)[0];
    if (
      root === undefined ||
      ourRoot === undefined ||
      fingerprintOfPem(root) !== fingerprintOfPem(ourRoot)
    ) {
      throw new SecondsiteError(
        'SS_CERT_INVALID',
        'the trust bundle does not start with our vault root',
      );
    }
    let pins = this.pins;
    for (const pem of cas) {
      const d = decidePin(
        { vault: this.info.vault, provider: this.provider, pins },
        caFacts(pem, [root], now),
        now,
      );
      if (d.kind === 'refuse') {
        throw new SecondsiteError('SS_CERT_INVALID', `provider CA refused: ${d.message}`, {
          reason: d.reason,
          fingerprint: fingerprintOfPem(pem),
        });
      }
      if (d.kind === 'accept') pins = d.pins;
    }
    pins = livePins(pins, now);
    const pinned = new Set(pins.map((p) => p.fingerprint));
    const held = [...cas, ...certificatesOf(this.caPem).slice(1)];
    const keep = held.filter((pem, i) => {
      const fp = fingerprintOfPem(pem);
      return pinned.has(fp) && held.findIndex((o) => fingerprintOfPem(o) === fp) === i;
    });
    const caPem = withoutExpired([root, ...keep].join(''), now);
    if (caPem === this.caPem && pins.length === this.pins.length) return caPem;
    const info = { ...this.info, providerCaPins: [...pins] };
    await savePins(this.dataDir, info, caPem);
    this.info = info;
    this.pins = pins;
    this.caPem = caPem;
    return caPem;
  }
}
