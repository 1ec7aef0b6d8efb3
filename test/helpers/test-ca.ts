/**
 * A test CA for component and integration tests: made once at suite start, it issues host,
 * provider and coordinator certificates in ~0.1 s each (native RSA key generation, forge
 * signing). Defaults suit loopback servers: SANs for localhost, 127.0.0.1 and ::1, usable as
 * both client and server, valid for a day from the real clock.
 */
import { createIntermediateCa, createRootCa } from '../../certs/ca.ts';
import { createKeyAndCsr } from '../../certs/csr.ts';
import { fingerprintOfPem } from '../../certs/inspect.ts';
import {
  coordinatorIdentity,
  hostIdentity,
  providerIdentity,
  type Identity,
} from '../../certs/identity.ts';
import { signCsr, type CertUsage } from '../../certs/sign.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export { coordinatorIdentity, hostIdentity, providerIdentity };
export type { Identity };

export interface IssuedCert {
  readonly identity: Identity;
  readonly keyPem: string;
  readonly certPem: string;
  /** certPem followed by the intermediates up to (not including) the root. */
  readonly chainPem: string;
}

export interface IssueOptions {
  /** ms since the epoch the certificate is made at (past values make expired certs). */
  readonly now?: number;
  readonly validDays?: number;
  readonly notAfter?: number;
  readonly usage?: CertUsage;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface TestCa {
  /** This CA's certificate and key (the issuer of `issue`'s certificates). */
  readonly certPem: string;
  readonly keyPem: string;
  /** The trust anchor peers are given (the root; equals certPem for a root CA). */
  readonly rootCertPem: string;
  /** Fingerprint of rootCertPem, as pinned in keys and join tokens. */
  readonly fingerprint: string;
  /** PEM of the intermediates between issued leaves and the root ('' for a root). */
  readonly intermediatesPem: string;
  issue(identity: Identity, opts?: IssueOptions): IssuedCert;
  issueHost(vault: string, name: string, opts?: IssueOptions): IssuedCert;
}

function makeTestCa(
  certPem: string,
  keyPem: string,
  intermediatesPem: string,
  rootCertPem: string,
): TestCa {
  const issue = (identity: Identity, opts: IssueOptions = {}): IssuedCert => {
    const now = opts.now ?? Date.now();
    const { keyPem: leafKey, csrPem } = createKeyAndCsr({ identity });
    const leaf = signCsr({
      caCertPem: certPem,
      caKeyPem: keyPem,
      csrPem,
      identity,
      now,
      validDays: opts.notAfter === undefined ? (opts.validDays ?? 1) : undefined,
      notAfter: opts.notAfter,
      usage: opts.usage ?? 'both',
      dnsNames: opts.dnsNames ?? ['localhost'],
      ipAddresses: opts.ipAddresses ?? ['127.0.0.1', '::1'],
    });
    return { identity, keyPem: leafKey, certPem: leaf, chainPem: leaf + intermediatesPem };
  };
  return {
    certPem,
    keyPem,
    rootCertPem,
    fingerprint: fingerprintOfPem(rootCertPem),
    intermediatesPem,
    issue,
    issueHost: (vault, name, opts) => issue(hostIdentity(vault, name), opts),
  };
}

/**
 * A root CA valid from 30 days before `now` (default: the real clock) to a year after, so that
 * tests can issue already-expired certificates by passing a past `now` to `issue`.
 */
export function createTestCa(opts: { commonName?: string; now?: number } = {}): TestCa {
  const now = opts.now ?? Date.now();
  const ca = createRootCa({
    commonName: opts.commonName ?? 'secondsite test CA',
    validDays: 30 + 365,
    now: now - 30 * DAY_MS,
  });
  return makeTestCa(ca.certPem, ca.keyPem, '', ca.certPem);
}

/**
 * An intermediate CA limited to `vault`, signed by `root`. Its issued leaves carry the
 * intermediate in chainPem; peers trust only `root.certPem`.
 */
export function createTestIntermediateCa(root: TestCa, vault: string, now = Date.now()): TestCa {
  // Starts a month back, like the root, so that it too can issue already-expired leaves.
  const start = now - 29 * DAY_MS;
  const inter = createIntermediateCa({
    caCertPem: root.certPem,
    caKeyPem: root.keyPem,
    vault,
    commonName: `secondsite test intermediate ${vault}`,
    validDays: 29 + 30,
    now: start,
  });
  return makeTestCa(inter.certPem, inter.keyPem, inter.certPem, root.rootCertPem);
}
