/**
 * Signs a registering provider's two CSRs with the coordinator's root CA: its TLS client
 * certificate (secondsite://<vault>/provider/<name>) and its intermediate CA, limited to the
 * vault (pathLen 0, URI name constraint), which later signs its hosts' certificates. Keys stay
 * on the provider; only CSRs came here. Later, over the provider's authenticated channel,
 * successors of that CA for its rotation (signSuccessorCa).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signIntermediateCsr } from '../../certs/ca.ts';
import { providerIdentity } from '../../certs/identity.ts';
import { signCsr } from '../../certs/sign.ts';

/** 90 days, renewed at half-life over the channel (later work). */
const CLIENT_CERT_DAYS = 90;
/** A year: host certificates it signs are cut to its lifetime. */
const PROVIDER_CA_MS = 365 * 86_400_000;

export interface ProviderCertificates {
  readonly clientCertPem: string;
  readonly caCertPem: string;
  readonly rootCaPem: string;
}

export interface ProviderSigner {
  sign(a: {
    vault: string;
    identityName: string;
    clientCsrPem: string;
    caCsrPem: string;
    now: number;
  }): Promise<ProviderCertificates>;
  /**
   * A successor of a registered provider's CA (agent_channel.proto step 8), for the provider
   * the channel authenticated: the CSR must ask for exactly that identity. Same limits and
   * lifetime as the first.
   */
  signSuccessorCa(a: {
    vault: string;
    identityName: string;
    caCsrPem: string;
    now: number;
  }): Promise<string>;
}

export interface ProviderSignerOptions {
  /** Lifetime of provider CAs (tests run a rotation in seconds). @default a year */
  readonly caLifetimeMs?: number;
}

export function providerSigner(dataDir: string, o: ProviderSignerOptions = {}): ProviderSigner {
  const caLifetimeMs = o.caLifetimeMs ?? PROVIDER_CA_MS;
  const root = async (): Promise<{ caCertPem: string; caKeyPem: string }> => {
    const dir = join(dataDir, 'pki');
    return {
      caCertPem: await readFile(join(dir, 'ca.crt'), 'utf8'),
      caKeyPem: await readFile(join(dir, 'ca.key'), 'utf8'),
    };
  };
  const providerCa = (
    r: { caCertPem: string; caKeyPem: string },
    a: { vault: string; identityName: string; caCsrPem: string; now: number },
  ): string =>
    signIntermediateCsr({
      ...r,
      csrPem: a.caCsrPem,
      vault: a.vault,
      identity: providerIdentity(a.vault, a.identityName),
      commonName: `secondsite provider CA ${a.vault}/${a.identityName}`,
      notAfter: a.now + caLifetimeMs,
      now: a.now,
    });
  return {
    signSuccessorCa: async (a) => providerCa(await root(), a),
    async sign(a) {
      const { caCertPem, caKeyPem } = await root();
      const identity = providerIdentity(a.vault, a.identityName);
      const clientCertPem = signCsr({
        caCertPem,
        caKeyPem,
        csrPem: a.clientCsrPem,
        identity,
        validDays: CLIENT_CERT_DAYS,
        now: a.now,
        usage: 'client',
      });
      const providerCaPem = providerCa({ caCertPem, caKeyPem }, a);
      return { clientCertPem, caCertPem: providerCaPem, rootCaPem: caCertPem };
    },
  };
}
