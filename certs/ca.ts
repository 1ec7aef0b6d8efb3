/**
 * Certificate authorities. Each coordinator has a root CA made at first start; a provider may
 * hold an intermediate CA limited to its vault (ARCHITECTURE.md, Trust). The intermediate's
 * key is made on the provider like any other key: the coordinator signs its CSR.
 *
 * "Limited to its vault" is enforced twice: pathLen 0 (it can sign leaves, never another CA),
 * and a critical nameConstraints extension permitting only URIs whose host is the vault, which
 * OpenSSL (and so Node's TLS) applies to every leaf's secondsite://<vault>/… URI SAN.
 */
import forge from 'node-forge';
import { createCsrForKey, readCsr } from './csr.ts';
import {
  certToPem,
  generateKeyPem,
  NAME_CONSTRAINTS_OID,
  parseKeyPem,
  publicKeyOf,
  randomSerial,
  resolveNotAfter,
  SAN_URI,
  setValidity,
  signSha256,
} from './forge-pki.ts';
import { formatIdentity, isValidVaultName, type Identity } from './identity.ts';
import { assertCsrAsksFor, issue, loadIssuer } from './sign.ts';
import { badInput } from '../common/errors/errors.ts';

export interface CaMaterial {
  readonly certPem: string;
  /** PKCS#8 PEM; write it with writeSecretFile. */
  readonly keyPem: string;
}

const CA_KEY_USAGE = { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true };

/** A self-signed root CA. */
export function createRootCa(opts: {
  commonName: string;
  validDays?: number;
  notAfter?: number;
  now: number;
}): CaMaterial {
  // Times are checked before the (slowest) step, key generation.
  const notAfter = resolveNotAfter(opts, opts.now);
  if (!(notAfter > opts.now)) throw badInput('notAfter', 'must be later than now');
  const keyPem = generateKeyPem();
  const key = parseKeyPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKeyOf(key);
  cert.serialNumber = randomSerial();
  setValidity(cert, opts.now, notAfter);
  const name = [{ name: 'commonName', value: opts.commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    CA_KEY_USAGE,
    { name: 'subjectKeyIdentifier' },
  ]);
  signSha256(cert, key);
  return { certPem: certToPem(cert), keyPem };
}

/**
 * DER of NameConstraints { permittedSubtrees [0] { GeneralSubtree { uniformResourceIdentifier
 * [6] <vault> } } } (RFC 5280 4.2.1.10). forge has no builder for it, so it is written with
 * forge's ASN.1 helpers. A URI constraint without a leading "." matches that host exactly.
 */
export function vaultNameConstraintsDer(vault: string): string {
  const { asn1 } = forge;
  const uri = asn1.create(asn1.Class.CONTEXT_SPECIFIC, SAN_URI, false, vault);
  const subtree = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [uri]);
  const permitted = asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [subtree]);
  const nc = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [permitted]);
  return asn1.toDer(nc).getBytes();
}

export interface SignIntermediateOptions {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly csrPem: string;
  readonly vault: string;
  /** The holder's identity (e.g. the provider), also put in a URI SAN when given. */
  readonly identity?: Identity;
  readonly commonName: string;
  readonly validDays?: number;
  readonly notAfter?: number;
  readonly now: number;
}

/** Signs a CSR as an intermediate CA limited to `vault`; returns its certificate PEM. */
export function signIntermediateCsr(opts: SignIntermediateOptions): string {
  if (!isValidVaultName(opts.vault)) throw badInput('vault', 'not a valid vault name');
  const csr = readCsr(opts.csrPem);
  if (opts.identity) {
    if (opts.identity.vault !== opts.vault) {
      throw badInput('identity', 'belongs to another vault than the intermediate CA');
    }
    assertCsrAsksFor(csr.requestedUris, opts.identity);
  }
  const issuer = loadIssuer(opts.caCertPem, opts.caKeyPem, opts.now);
  const extensions: object[] = [
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    CA_KEY_USAGE,
    { id: NAME_CONSTRAINTS_OID, critical: true, value: vaultNameConstraintsDer(opts.vault) },
  ];
  if (opts.identity) {
    extensions.push({
      name: 'subjectAltName',
      altNames: [{ type: SAN_URI, value: formatIdentity(opts.identity) }],
    });
  }
  const cert = issue({
    issuer,
    publicKey: csr.publicKey,
    subject: [{ name: 'commonName', value: opts.commonName }],
    extensions,
    now: opts.now,
    notAfter: resolveNotAfter(opts, opts.now),
  });
  return certToPem(cert);
}

/**
 * Key, CSR and signature in one call, for the coordinator's own use and for tests. A provider
 * makes its key itself (createKeyAndCsr) and sends only the CSR to signIntermediateCsr.
 */
export function createIntermediateCa(opts: Omit<SignIntermediateOptions, 'csrPem'>): CaMaterial {
  const keyPem = generateKeyPem();
  const csrPem = createCsrForKey({
    keyPem,
    identity: opts.identity,
    subject: [{ name: 'commonName', value: opts.commonName }],
  });
  return { certPem: signIntermediateCsr({ ...opts, csrPem }), keyPem };
}
