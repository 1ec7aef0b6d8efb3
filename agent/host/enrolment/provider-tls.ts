/**
 * Trusting the provider. First contact (enrolment) is pinned: the host has only the
 * fingerprint of the provider's intermediate CA from the join token, so it first reads the
 * chain the provider presents (no trust yet), keeps it only if it holds a CA with exactly that
 * fingerprint, the leaf verifies up to the vault root through it and names a provider; the
 * root found becomes the anchor of the gRPC connection, whose server check pins the same
 * intermediate again (the second connection could reach another server).
 */
import { connect, type PeerCertificate } from 'node:tls';
import { fingerprintOfDer } from '../../../certs/fingerprint.ts';
import { formatIdentity, type Identity } from '../../../certs/identity.ts';
import { fingerprintOfPem } from '../../../certs/inspect.ts';
import { identityFromPeerCertificate, pemOfDer, presentedChain } from '../../../certs/peer.ts';
import { verifyChain } from '../../../certs/verify.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';

export interface PinnedProvider {
  /** The provider's identity, from its verified certificate. */
  readonly identity: Identity;
  readonly intermediatePem: string;
  readonly rootCaPem: string;
}

function mismatch(address: string, fingerprint: string, presented: string[]): SecondsiteError {
  return new SecondsiteError(
    'SS_FINGERPRINT_MISMATCH',
    `the server at ${address} does not present the provider CA pinned in the join token (${fingerprint.slice(0, 16)}…); check --provider and the token`,
    { expected: fingerprint, presented },
  );
}

/** Reads and checks the provider's chain; see the file comment. */
export function pinProvider(a: {
  host: string;
  port: number;
  fingerprint: string;
  now: number;
  timeoutMs?: number;
}): Promise<PinnedProvider> {
  const address = `${a.host}:${a.port}`;
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: a.host,
      port: a.port,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    socket.setTimeout(a.timeoutMs ?? 10_000, () =>
      socket.destroy(new Error('no TLS handshake in time')),
    );
    socket.once('error', (e) =>
      reject(
        new SecondsiteError(
          'SS_UNAVAILABLE',
          `cannot reach the provider at ${address}: ${e.message}`,
          {
            provider: address,
          },
        ),
      ),
    );
    socket.once('secureConnect', () => {
      try {
        resolve(
          checkChain(
            presentedChain(socket.getPeerCertificate(true)),
            address,
            a.fingerprint,
            a.now,
          ),
        );
      } catch (e) {
        reject(e);
      } finally {
        socket.end();
      }
    });
  });
}

function checkChain(
  chain: PeerCertificate[],
  address: string,
  fingerprint: string,
  now: number,
): PinnedProvider {
  const pems = chain.map((c) => pemOfDer(c.raw));
  const at = pems.findIndex((p) => fingerprintOfPem(p) === fingerprint);
  const intermediatePem = pems[at];
  const rootCaPem = pems[pems.length - 1];
  const leaf = chain[0];
  if (at <= 0 || intermediatePem === undefined || rootCaPem === undefined || leaf === undefined) {
    throw mismatch(
      address,
      fingerprint,
      pems.map((p) => fingerprintOfPem(p)),
    );
  }
  const verified = verifyChain(pems.slice(0, at + 1).join(''), [rootCaPem], now);
  if (!verified.ok) {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      `provider certificate refused: ${verified.message}`,
      {
        reason: verified.reason,
      },
    );
  }
  const identity = identityFromPeerCertificate(leaf);
  if (identity.kind !== 'provider') {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      `${address} is not a provider (${formatIdentity(identity)})`,
    );
  }
  return { identity, intermediatePem, rootCaPem };
}

/**
 * The gRPC server check of every connection to the provider (after TLS verified the chain to
 * the root): a provider of our vault, signed by a pinned intermediate. The pins are read per
 * connection: during a CA rotation they hold the old and the new CA (provider-pins.ts).
 */
export function checkProvider(
  vault: string,
  pinned: string | (() => readonly string[]),
): (hostname: string, cert: PeerCertificate) => Error | undefined {
  const pins = typeof pinned === 'string' ? () => [pinned] : pinned;
  return (_hostname, cert) => {
    try {
      const identity = identityFromPeerCertificate(cert);
      if (identity.kind !== 'provider' || identity.vault !== vault) {
        return new SecondsiteError(
          'SS_CERT_INVALID',
          `not a provider of vault ${vault}: ${formatIdentity(identity)}`,
        );
      }
      // Node passes the chain it verified (getPeerCertificate(true)): the pin must be in it.
      const now = pins();
      if (!presentedChain(cert).some((c) => now.includes(fingerprintOfDer(c.raw)))) {
        return new SecondsiteError(
          'SS_FINGERPRINT_MISMATCH',
          'the provider is not signed by the pinned CA',
        );
      }
      return undefined;
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  };
}
