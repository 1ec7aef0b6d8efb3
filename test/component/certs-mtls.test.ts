/**
 * Proof that the certs module's certificates work for real gRPC mutual TLS (grpc-js over
 * Node's OpenSSL), and that the caller is authorised from the verified peer certificate:
 *
 * 1. A test CA is made at suite start; a server on 127.0.0.1:0 demands client certificates.
 * 2. The handler reads the caller from `call.getAuthContext().sslPeerCertificate`, checks its
 *    validity on the call and accepts exactly one identity.
 * 3. The client verifies the server by its identity URI SAN, not by the address it dialled.
 * Negative steps: no client certificate, another CA, an expired certificate, the wrong
 * identity, a server with the wrong identity, and a leaf outside its intermediate's vault.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIdentity, sameIdentity, type Identity } from '../../certs/identity.ts';
import {
  assertPeerCertificateCurrent,
  checkServerIdentityFor,
  identityFromPeerCertificate,
} from '../../certs/peer.ts';
import {
  createTestCa,
  createTestIntermediateCa,
  hostIdentity,
  type IssuedCert,
  type TestCa,
} from '../helpers/test-ca.ts';

const VAULT = 'v1';
const SERVER_ID = hostIdentity(VAULT, 'hv-server');
const ALLOWED_CLIENT = hostIdentity(VAULT, 'hv-client');
const DAY_MS = 24 * 60 * 60 * 1000;
const PATH = '/secondsite.test.Probe/WhoAmI';
const raw = (b: Buffer): Buffer => b;

const service: grpc.ServiceDefinition = {
  whoAmI: {
    path: PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};

let ca: TestCa;
let server: grpc.Server;
let port: number;
/**
 * Identities the handler saw: a refusal at the handshake never reaches it. grpc-js reports
 * every handshake refusal as UNAVAILABLE and the server closes without a TLS alert, so each
 * negative case differs from the accepted one in exactly one respect (CA, validity, vault).
 */
const seen: string[] = [];

const whoAmI: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  let caller: Identity;
  try {
    // TLS checked validity at the handshake only; a long-lived connection can outlast it.
    assertPeerCertificateCurrent(peer, Date.now());
    caller = identityFromPeerCertificate(peer);
  } catch (e) {
    callback({ code: grpc.status.UNAUTHENTICATED, details: (e as Error).message });
    return;
  }
  seen.push(formatIdentity(caller));
  if (!sameIdentity(caller, ALLOWED_CLIENT)) {
    callback({ code: grpc.status.PERMISSION_DENIED, details: 'caller not allowed' });
    return;
  }
  callback(null, Buffer.from(formatIdentity(caller)));
};

function clientCreds(
  client: IssuedCert | undefined,
  expectServer: Identity = SERVER_ID,
  rootPem = ca.rootCertPem,
): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(rootPem),
    client ? Buffer.from(client.keyPem) : null,
    client ? Buffer.from(client.chainPem) : null,
    { checkServerIdentity: checkServerIdentityFor(expectServer) },
  );
}

interface Outcome {
  readonly code: grpc.status;
  readonly value?: string;
}

function call(creds: grpc.ChannelCredentials): Promise<Outcome> {
  // Dial by address; SNI gets a host name (Node refuses IP addresses as SNI), while the
  // server itself is checked by its identity URI SAN (checkServerIdentityFor).
  const client = new grpc.Client(`127.0.0.1:${port}`, creds, {
    'grpc.ssl_target_name_override': 'localhost',
  });
  return new Promise<Outcome>((resolve) => {
    // The deadline only bounds a hang; no assertion depends on timing.
    client.makeUnaryRequest(
      PATH,
      raw,
      raw,
      Buffer.alloc(0),
      { deadline: Date.now() + 20_000 },
      (err, value) => {
        client.close();
        resolve(err ? { code: err.code } : { code: grpc.status.OK, value: value?.toString() });
      },
    );
  });
}

async function startServer(cert: IssuedCert): Promise<void> {
  server = new grpc.Server();
  server.addService(service, { whoAmI });
  const creds = grpc.ServerCredentials.createSsl(
    Buffer.from(ca.rootCertPem),
    [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.chainPem) }],
    true,
  );
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
}

beforeAll(async () => {
  ca = createTestCa();
  await startServer(ca.issue(SERVER_ID, { usage: 'server' }));
});

afterAll(() => {
  server?.forceShutdown();
});

/** Runs `fn` and returns the identities the handler saw meanwhile. */
async function observed(fn: () => Promise<Outcome>): Promise<{ outcome: Outcome; seen: string[] }> {
  const before = seen.length;
  const outcome = await fn();
  return { outcome, seen: seen.slice(before) };
}

describe('gRPC mutual TLS with secondsite certificates', () => {
  it('accepts a valid client certificate and sees its identity', async () => {
    const r = await observed(() =>
      call(clientCreds(ca.issue(ALLOWED_CLIENT, { usage: 'client' }))),
    );
    expect(r.outcome).toEqual({ code: grpc.status.OK, value: formatIdentity(ALLOWED_CLIENT) });
    expect(r.seen).toEqual([formatIdentity(ALLOWED_CLIENT)]);
  });

  it('refuses a client without a certificate at the handshake', async () => {
    const r = await observed(() => call(clientCreds(undefined)));
    expect(r.outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.seen).toEqual([]);
  });

  it('refuses a certificate from another CA at the handshake', async () => {
    const other = createTestCa({ commonName: 'secondsite test CA' });
    const r = await observed(() => call(clientCreds(other.issue(ALLOWED_CLIENT))));
    expect(r.outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.seen).toEqual([]);
  });

  it('refuses an expired certificate at the handshake', async () => {
    const expired = ca.issue(ALLOWED_CLIENT, { now: Date.now() - 10 * DAY_MS, validDays: 1 });
    const r = await observed(() => call(clientCreds(expired)));
    expect(r.outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.seen).toEqual([]);
  });

  it('refuses a valid certificate of another identity in the handler', async () => {
    const stranger = hostIdentity(VAULT, 'hv-other');
    const r = await observed(() => call(clientCreds(ca.issue(stranger))));
    expect(r.outcome.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(r.seen).toEqual([formatIdentity(stranger)]);
  });

  it('the client refuses a server whose identity is not the expected one', async () => {
    const client = ca.issue(ALLOWED_CLIENT);
    const r = await observed(() => call(clientCreds(client, hostIdentity(VAULT, 'hv-elsewhere'))));
    expect(r.outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.seen).toEqual([]);
  });

  it('the client refuses a server from another CA', async () => {
    const other = createTestCa();
    const r = await observed(() =>
      call(clientCreds(ca.issue(ALLOWED_CLIENT), SERVER_ID, other.rootCertPem)),
    );
    expect(r.outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.seen).toEqual([]);
  });

  describe('through an intermediate CA limited to the vault', () => {
    let inter: TestCa;
    beforeAll(() => {
      inter = createTestIntermediateCa(ca, VAULT);
    });

    it('accepts a leaf of the vault that sends its chain', async () => {
      const r = await observed(() => call(clientCreds(inter.issue(ALLOWED_CLIENT))));
      expect(r.outcome).toEqual({ code: grpc.status.OK, value: formatIdentity(ALLOWED_CLIENT) });
    });

    it('refuses, at the handshake, a leaf it signed for another vault', async () => {
      const outsider = inter.issue(hostIdentity('v2', 'hv-client'));
      const r = await observed(() => call(clientCreds(outsider)));
      expect(r.outcome.code).toBe(grpc.status.UNAVAILABLE);
      expect(r.seen).toEqual([]);
    });
  });
});
