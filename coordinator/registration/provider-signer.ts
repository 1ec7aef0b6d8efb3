/**
 * Signs a registering provider's two CSRs with the coordinator's root CA: its TLS client
 * certificate (secondsite://<vault>/provider/<name>) and its intermediate CA, limited to the
 * vault (pathLen 0, URI name constraint), which later signs its hosts' certificates. Keys stay
 * on the provider; only CSRs came here.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signIntermediateCsr } from '../../certs/ca.ts';
import { providerIdentity } from '../../certs/identity.ts';
import { signCsr } from '../../certs/sign.ts';

/** 90 days, renewed at half-life over the channel (later work). */
const CLIENT_CERT_DAYS = 90;
/** A year: host certificates it signs are cut to its lifetime. */
const PROVIDER_CA_DAYS = 365;

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
}

export function providerSigner(dataDir: string): ProviderSigner {
  return {
    async sign(a) {
      const dir = join(dataDir, 'pki');
      const caCertPem = await readFile(join(dir, 'ca.crt'), 'utf8');
      const caKeyPem = await readFile(join(dir, 'ca.key'), 'utf8');
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
      const providerCaPem = signIntermediateCsr({
        caCertPem,
        caKeyPem,
        csrPem: a.caCsrPem,
        vault: a.vault,
        identity,
        commonName: `secondsite provider CA ${a.vault}/${a.identityName}`,
        validDays: PROVIDER_CA_DAYS,
        now: a.now,
      });
      return { clientCertPem, caCertPem: providerCaPem, rootCaPem: caCertPem };
    },
  };
}
