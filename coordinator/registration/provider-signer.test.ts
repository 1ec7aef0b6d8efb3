import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRootCa } from '../../certs/ca.ts';
import { createKeyAndCsr } from '../../certs/csr.ts';
import { providerIdentity } from '../../certs/identity.ts';
import { certFacts, identityFromCertPem } from '../../certs/inspect.ts';
import { verifyChain } from '../../certs/verify.ts';
import { providerSigner } from './provider-signer.ts';

const now = Date.now();
const dir = mkdtempSync(join(tmpdir(), 'ss-signer-'));
const root = createRootCa({ commonName: 'root', validDays: 10, now });
mkdirSync(join(dir, 'pki'));
writeFileSync(join(dir, 'pki', 'ca.crt'), root.certPem);
writeFileSync(join(dir, 'pki', 'ca.key'), root.keyPem);
const signer = providerSigner(dir, { caLifetimeMs: 60_000 });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('signSuccessorCa', () => {
  it('signs a vault-limited CA for the calling provider, with the configured lifetime', async () => {
    const { csrPem } = createKeyAndCsr({ identity: providerIdentity('prod', 'ny') });
    const pem = await signer.signSuccessorCa({
      vault: 'prod',
      identityName: 'ny',
      caCsrPem: csrPem,
      now,
    });
    expect(verifyChain(pem, [root.certPem], now)).toEqual({ ok: true });
    expect(identityFromCertPem(pem)).toEqual(providerIdentity('prod', 'ny'));
    expect(certFacts(pem)).toMatchObject({
      isCa: true,
      notAfter: Math.floor((now + 60_000) / 1000) * 1000,
    });
  });

  it('refuses a CSR naming another provider than the caller', async () => {
    const { csrPem } = createKeyAndCsr({ identity: providerIdentity('prod', 'chi') });
    await expect(
      signer.signSuccessorCa({ vault: 'prod', identityName: 'ny', caCsrPem: csrPem, now }),
    ).rejects.toMatchObject({ code: 'SS_CSR_INVALID' });
  });
});
