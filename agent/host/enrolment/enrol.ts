/**
 * `host start --provider … --token-file …`: the enrolled host's identity, made at the first
 * start (host_control.proto, enrolment steps 1-4) and loaded at every later one, which needs
 * no token. Nothing is stored unless the provider accepted the request and its answer checks
 * out, so a refused token leaves the data folder as it was.
 */
import { readFile } from 'node:fs/promises';
import { createKeyAndCsr } from '../../../certs/csr.ts';
import { formatIdentity, hostIdentity } from '../../../certs/identity.ts';
import { fingerprintOfPem, identityFromCertPem } from '../../../certs/inspect.ts';
import { parseJoinToken } from '../../../certs/secrets.ts';
import { verifyChain } from '../../../certs/verify.ts';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import { loadHostIdentity, saveHostIdentity, type HostIdentity } from './host-identity.ts';
import { createProviderClient } from './provider-client.ts';
import { pinProvider } from './provider-tls.ts';

export interface EnrolOptions {
  readonly dataDir: string;
  readonly name: string;
  /** HOST:PORT of the provider. */
  readonly provider: string;
  /** Needed at the first start only. */
  readonly tokenFile: string | undefined;
  readonly address: string | undefined;
  readonly now: () => number;
  readonly log: Logger;
}

async function readToken(path: string): Promise<{ caFingerprint: string; secret: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw badInput(
      '--token-file',
      `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e})`,
    );
  }
  return parseJoinToken(text);
}

function splitTarget(target: string): { host: string; port: number } {
  const at = target.lastIndexOf(':');
  return { host: target.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(target.slice(at + 1)) };
}

/** The provider's answer must be a certificate for our key and identity, from the pin. */
function checkReply(o: {
  certPem: string;
  intermediatePem: string;
  rootCaPem: string;
  expected: string;
  pinned: string;
  now: number;
}): void {
  if (fingerprintOfPem(o.intermediatePem) !== o.pinned) {
    throw new SecondsiteError('SS_FINGERPRINT_MISMATCH', 'the provider answered with another CA');
  }
  const chain = verifyChain(o.certPem + o.intermediatePem, [o.rootCaPem], o.now);
  if (!chain.ok) {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      `the issued certificate does not verify: ${chain.message}`,
    );
  }
  const got = formatIdentity(identityFromCertPem(o.certPem));
  if (got !== o.expected) {
    throw new SecondsiteError('SS_CERT_INVALID', `issued for ${got}, not ${o.expected}`);
  }
}

async function enrol(o: EnrolOptions, tokenFile: string): Promise<HostIdentity> {
  const token = await readToken(tokenFile);
  const target = splitTarget(o.provider);
  const pinned = await pinProvider({ ...target, fingerprint: token.caFingerprint, now: o.now() });
  const vault = pinned.identity.vault;
  const identity = formatIdentity(hostIdentity(vault, o.name.toLowerCase()));
  const { keyPem, csrPem } = createKeyAndCsr({
    identity: hostIdentity(vault, o.name.toLowerCase()),
  });
  const client = createProviderClient({
    target: o.provider,
    rootCaPem: pinned.rootCaPem,
    provider: { vault, intermediateFingerprint: token.caFingerprint },
  });
  try {
    const reply = await client.enrol({
      hostName: o.name,
      csrPem,
      tokenSecret: token.secret,
      address: o.address ?? '',
    });
    checkReply({ ...reply, expected: identity, pinned: token.caFingerprint, now: o.now() });
    const enrolled: HostIdentity = {
      info: {
        vault,
        name: o.name,
        identity,
        server: reply.server,
        provider: o.provider,
        providerCaFingerprint: token.caFingerprint,
        enrolledAt: new Date(o.now()).toISOString(),
      },
      keyPem,
      certPem: reply.certPem + reply.intermediatePem,
      caPem: reply.rootCaPem + reply.intermediatePem,
    };
    await saveHostIdentity(o.dataDir, enrolled);
    o.log.info({ identity, server: reply.server }, 'enrolled with the provider');
    return enrolled;
  } finally {
    client.close();
  }
}

/** The stored identity, or a new one from the token; see the file comment. */
export async function ensureEnrolled(o: EnrolOptions): Promise<HostIdentity> {
  const stored = await loadHostIdentity(o.dataDir);
  if (stored !== undefined) {
    if (stored.info.name !== o.name) {
      throw badInput(
        '--name',
        `this data folder is enrolled as host ${stored.info.name}, not ${o.name}`,
      );
    }
    if (o.tokenFile !== undefined) o.log.info('already enrolled: --token-file was not needed');
    return stored;
  }
  if (o.tokenFile === undefined) {
    throw badInput(
      '--token-file',
      "the first start enrols the host: pass the provider's join token",
    );
  }
  return enrol(o, o.tokenFile);
}
