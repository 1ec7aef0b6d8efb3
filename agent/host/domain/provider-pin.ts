/**
 * The host's pin of its provider's CA, across a rotation of that CA (pure: facts in, decision
 * out; certs/ca-facts.ts reads the facts, provider-pins.ts stores the result).
 *
 * At enrolment the host pins its provider's intermediate CA by fingerprint (the join token
 * names it) and checks the pin on every connection to the provider, so no other provider of
 * the vault, nor of another vault under the same root, can pose as its own. When the provider
 * rotates its CA (docs/security.md, CA rotation), the host learns the successor over the
 * already-authenticated provider link (the set_trust_bundle command) and pins it as well when,
 * and only when, ALL of these hold:
 *
 *  1. it chains to the vault root the host already trusts, and is valid now;
 *  2. it is a vault-limited CA exactly as ours are issued: CA flag, keyCertSign, pathLen 0;
 *  3. its URI name constraints permit exactly the host's vault, nothing else;
 *  4. its URI SANs are exactly the one identity the pinned CA names
 *     (secondsite://<vault>/provider/<name>): the same provider. Only the coordinator, with
 *     the root key, can issue that, and it issues it only to that authenticated provider;
 *  5. it ends later than every CA pinned now: a successor, never an older CA brought back.
 *
 * The subject name is not compared: it is display text, and identity (4) plus limits (2, 3)
 * are what TLS and verify.ts enforce. Pins then hold {old, new}; each pin is dropped once its
 * CA has expired (the leaves it signed are cut to its life, so none can still be presented).
 */

export interface PinnedCa {
  readonly fingerprint: string;
  /** ms since the epoch: the CA's notAfter, after which the pin is dropped. */
  readonly notAfter: number;
}

export interface PinState {
  readonly vault: string;
  /** The identity URI the pinned CA carries (the provider it belongs to). */
  readonly provider: string;
  readonly pins: readonly PinnedCa[];
}

/** A candidate successor as certs/ca-facts.ts reads it. */
export interface CandidateCa {
  readonly fingerprint: string;
  readonly notAfter: number;
  readonly isCa: boolean;
  readonly pathLen: number | undefined;
  readonly keyCertSign: boolean;
  readonly permittedVaults: readonly string[] | undefined | null;
  readonly uris: readonly string[];
  /** 'ok' when it verified up to the host's trusted root now, else the failure. */
  readonly chain: string;
}

export type PinRefusal =
  'not-chained' | 'not-a-vault-ca' | 'other-vault' | 'other-provider' | 'not-newer';

export type PinDecision =
  | { readonly kind: 'known' }
  | { readonly kind: 'accept'; readonly pins: readonly PinnedCa[] }
  | { readonly kind: 'refuse'; readonly reason: PinRefusal; readonly message: string };

/** The pins still in force at `now`. */
export function livePins(pins: readonly PinnedCa[], now: number): PinnedCa[] {
  return pins.filter((p) => p.notAfter > now);
}

const refuse = (reason: PinRefusal, message: string): PinDecision => ({
  kind: 'refuse',
  reason,
  message,
});

/** Whether `c` may be pinned beside the current pins (rules 1-5 of the file comment). */
export function decidePin(state: PinState, c: CandidateCa, now: number): PinDecision {
  if (state.pins.some((p) => p.fingerprint === c.fingerprint)) return { kind: 'known' };
  if (c.chain !== 'ok') {
    return refuse('not-chained', `the CA does not chain to the trusted vault root (${c.chain})`);
  }
  if (!c.isCa || !c.keyCertSign || c.pathLen !== 0) {
    return refuse('not-a-vault-ca', 'not a vault-limited CA (CA, keyCertSign, pathLen 0)');
  }
  const vaults = c.permittedVaults ?? [];
  if (vaults.length !== 1 || vaults[0] !== state.vault) {
    return refuse('other-vault', `the CA is not limited to vault ${state.vault}`);
  }
  if (c.uris.length !== 1 || c.uris[0] !== state.provider) {
    return refuse('other-provider', `the CA does not belong to ${state.provider}`);
  }
  const latest = Math.max(...state.pins.map((p) => p.notAfter));
  if (!(c.notAfter > latest)) {
    return refuse('not-newer', 'the CA ends no later than the pinned one: not a successor');
  }
  return {
    kind: 'accept',
    pins: [...livePins(state.pins, now), { fingerprint: c.fingerprint, notAfter: c.notAfter }],
  };
}
