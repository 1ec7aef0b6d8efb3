/**
 * Renewal of an enrolled host's certificate (host_control.proto, renewal step 2), as a service
 * function: the caller is who its verified certificate says, the CSR must ask for exactly that
 * identity (signCsr refuses any other name), and the new certificate carries the IP SANs of
 * the current one, so renewal can neither rename a host nor move it to another address.
 */
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { parseSubjectAltName } from '../../../certs/peer.ts';
import { signCsr } from '../../../certs/sign.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type {
  HostRenewReply,
  HostRenewRequest,
} from '../../../common/wire/host-control-messages.ts';
import type { Caller } from '../../common/caller.ts';
import type { StoredIdentity } from '../../common/identity-store.ts';
import type { SigningCa } from './provider-ca.ts';
import type { SiteFile } from '../site/site-schema.ts';

/** As at enrolment (enrol.ts): a year, cut by the signer to the intermediate's own end. */
export const HOST_CERT_DAYS = 365;

export interface RenewDeps {
  readonly identity: StoredIdentity;
  /** The CA that signs now and the bundle hosts trust (provider-ca.ts). */
  readonly ca: SigningCa;
  readonly site: () => SiteFile;
  readonly now: () => number;
}

/** IP addresses named by the caller's current certificate. */
function ipSansOf(peer: PeerCertificate | undefined): string[] {
  return parseSubjectAltName(peer?.subjectaltname ?? '')
    .filter((s) => s.type === 'IP Address' && isIP(s.value) !== 0)
    .map((s) => s.value);
}

export function renewHost(
  deps: RenewDeps,
  caller: Caller,
  peer: PeerCertificate | undefined,
  req: HostRenewRequest,
): HostRenewReply {
  const { info } = deps.identity;
  const { certPem: caCertPem, keyPem: caKeyPem } = deps.ca.signing();
  if (caller.vault !== info.vault || caller.identity.kind !== 'host') {
    throw new SecondsiteError('SS_UNAUTHENTICATED', `${caller.uri} is not a host of this vault`);
  }
  if (!deps.site().hosts.some((h) => h.name.toLowerCase() === caller.host)) {
    throw new SecondsiteError(
      'SS_UNAUTHENTICATED',
      `host ${caller.host} is not declared in the site file`,
    );
  }
  const certPem = signCsr({
    caCertPem,
    caKeyPem,
    csrPem: req.csrPem,
    identity: caller.identity,
    validDays: HOST_CERT_DAYS,
    now: deps.now(),
    usage: 'both',
    ipAddresses: ipSansOf(peer),
  });
  return { certPem, intermediatePem: caCertPem, caBundlePem: deps.ca.bundle() };
}
