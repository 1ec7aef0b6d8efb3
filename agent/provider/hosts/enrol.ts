/**
 * Enrolment of a host (host_control.proto, steps 2-3), as a service function: check the join
 * token's secret against the stored hash, check that the site file declares the host, sign
 * its CSR with the provider's intermediate CA.
 *
 * A wrong secret is refused with one message whatever else is wrong, and before the host
 * name is looked at, so a caller without the token learns nothing about this site.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { formatIdentity, hostIdentity, isValidIdentityName } from '../../../certs/identity.ts';
import { secretMatchesHash } from '../../../certs/secrets.ts';
import { signCsr } from '../../../certs/sign.ts';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type {
  HostEnrolReply,
  HostEnrolRequest,
} from '../../../common/wire/host-control-messages.ts';
import type { StoredIdentity } from '../../common/identity-store.ts';
import type { SigningCa } from './provider-ca.ts';
import type { SiteFile } from '../site/site-schema.ts';

/** A year, cut by the signer to the intermediate's own end; renewal comes with rotation. */
const HOST_CERT_DAYS = 365;

export interface EnrolDeps {
  readonly dataDir: string;
  readonly identity: StoredIdentity;
  /** The CA that signs now (provider-ca.ts). */
  readonly ca: SigningCa;
  readonly site: () => SiteFile;
  readonly now: () => number;
}

async function tokenHash(dataDir: string): Promise<string> {
  try {
    return (await readFile(join(dataDir, 'identity', 'host-join-token.sha256'), 'utf8')).trim();
  } catch (e) {
    throw new SecondsiteError('SS_INTERNAL', 'the join token hash is missing', {}, { cause: e });
  }
}

export async function enrolHost(deps: EnrolDeps, req: HostEnrolRequest): Promise<HostEnrolReply> {
  if (!secretMatchesHash(req.tokenSecret, await tokenHash(deps.dataDir))) {
    throw new SecondsiteError(
      'SS_KEY_INVALID',
      "the join token is not valid; copy <data>/host-join-token from this host's provider again",
    );
  }
  const site = deps.site();
  if (!site.hosts.some((h) => h.name === req.hostName)) {
    throw new SecondsiteError(
      'SS_NOT_FOUND',
      `host ${req.hostName} is not declared in the site file of ${site.server}; add it under "hosts" or start the host with a declared --name`,
      { host: req.hostName, server: site.server },
    );
  }
  const name = req.hostName.toLowerCase();
  if (!isValidIdentityName(name)) {
    throw badInput('name', `"${req.hostName}" cannot be an identity name (a-z, 0-9, . _ -)`);
  }
  if (req.address !== '' && isIP(req.address) === 0) {
    throw badInput('address', `"${req.address}" is not an IP address`);
  }
  const { info, rootCaPem } = deps.identity;
  const { certPem: caCertPem, keyPem: caKeyPem } = deps.ca.signing();
  const identity = hostIdentity(info.vault, name);
  const certPem = signCsr({
    caCertPem,
    caKeyPem,
    csrPem: req.csrPem,
    identity,
    validDays: HOST_CERT_DAYS,
    now: deps.now(),
    usage: 'both',
    ipAddresses: req.address === '' ? [] : [req.address],
  });
  return {
    vault: info.vault,
    identity: formatIdentity(identity),
    certPem,
    intermediatePem: caCertPem,
    rootCaPem,
    server: info.name,
  };
}
