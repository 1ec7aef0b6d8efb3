/**
 * The coordinator's own PKI, made at first start: a root CA (the trust anchor providers pin
 * by fingerprint) and the HTTPS server certificate for the listen address. Keys are made here
 * and written 0600; certificates 0644. The server certificate is reissued at start when it
 * passed half its life or no longer names the address being listened on.
 *
 *   <data>/pki/ca.crt  ca.key          root CA (10 years)
 *   <data>/pki/server.crt  server.key  HTTPS server certificate (90 days, from the root CA)
 *   <data>/pki/server-names.json       the SANs server.crt was issued for
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createRootCa } from '../../certs/ca.ts';
import { createKeyAndCsr } from '../../certs/csr.ts';
import { writePublicFile, writeSecretFile } from '../../certs/files.ts';
import { coordinatorIdentity } from '../../certs/identity.ts';
import { certFacts } from '../../certs/inspect.ts';
import { renewalDue } from '../../certs/rotation.ts';
import { signCsr } from '../../certs/sign.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';

const CA_VALID_DAYS = 3650;
const SERVER_VALID_DAYS = 90;
/**
 * The HTTPS certificate is not a vault member's; its URI SAN uses a reserved label in the
 * vault position so it is still a well-formed identity.
 */
const SERVER_IDENTITY = coordinatorIdentity('coordinator');

export interface CoordinatorPki {
  readonly caCertPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
}

interface ServerNames {
  readonly dnsNames: string[];
  readonly ipAddresses: string[];
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The names a client may dial: the listen address, or loopback and this host's name. */
export function serverNamesFor(host: string): ServerNames {
  const wildcard = host === '0.0.0.0' || host === '::';
  if (wildcard) {
    const name = hostname().toLowerCase();
    const dns = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/.test(name)
      ? [name, 'localhost']
      : ['localhost'];
    return { dnsNames: dns, ipAddresses: ['127.0.0.1', '::1'] };
  }
  if (isIP(host) !== 0) return { dnsNames: [], ipAddresses: [host] };
  return { dnsNames: [host.toLowerCase()], ipAddresses: [] };
}

async function ensureCa(
  dir: string,
  now: number,
  log: Logger,
): Promise<{ certPem: string; keyPem: string }> {
  const certPem = await readOptional(join(dir, 'ca.crt'));
  const keyPem = await readOptional(join(dir, 'ca.key'));
  if (certPem !== undefined && keyPem !== undefined) return { certPem, keyPem };
  const ca = createRootCa({
    commonName: 'secondsite coordinator root CA',
    validDays: CA_VALID_DAYS,
    now,
  });
  // Key first: a CA certificate on disk without its key would be unusable.
  await writeSecretFile(join(dir, 'ca.key'), ca.keyPem);
  await writePublicFile(join(dir, 'ca.crt'), ca.certPem);
  log.info('created the root CA');
  return ca;
}

export async function ensurePki(opts: {
  dataDir: string;
  host: string;
  clock: Clock;
  log: Logger;
}): Promise<CoordinatorPki> {
  const dir = join(opts.dataDir, 'pki');
  const now = opts.clock.now();
  const ca = await ensureCa(dir, now, opts.log);
  const wanted = serverNamesFor(opts.host);
  const certPem = await readOptional(join(dir, 'server.crt'));
  const keyPem = await readOptional(join(dir, 'server.key'));
  const issuedFor = await readOptional(join(dir, 'server-names.json'));
  if (certPem !== undefined && keyPem !== undefined && issuedFor === JSON.stringify(wanted)) {
    const facts = certFacts(certPem);
    if (!renewalDue(facts.notBefore, facts.notAfter, now)) {
      return { caCertPem: ca.certPem, serverCertPem: certPem, serverKeyPem: keyPem };
    }
  }
  const csr = createKeyAndCsr({ identity: SERVER_IDENTITY });
  const serverCertPem = signCsr({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    csrPem: csr.csrPem,
    identity: SERVER_IDENTITY,
    validDays: SERVER_VALID_DAYS,
    now,
    usage: 'server',
    dnsNames: wanted.dnsNames,
    ipAddresses: wanted.ipAddresses,
  });
  // The names file is written last and cleared first: after a crash part-way, the pair on disk
  // may not match, and the stale names force a fresh issue at the next start.
  await writePublicFile(join(dir, 'server-names.json'), '');
  await writeSecretFile(join(dir, 'server.key'), csr.keyPem);
  await writePublicFile(join(dir, 'server.crt'), serverCertPem);
  await writePublicFile(join(dir, 'server-names.json'), JSON.stringify(wanted));
  opts.log.info({ names: wanted }, 'issued the HTTPS server certificate');
  return { caCertPem: ca.certPem, serverCertPem, serverKeyPem: csr.keyPem };
}
