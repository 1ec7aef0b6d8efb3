/**
 * The host's gRPC client of the provider's ProviderHosts service (host_control.proto): TLS
 * anchored at the vault root, the provider checked by provider-tls.ts; with the host's own
 * certificate once enrolled (mutual TLS).
 */
import * as grpc from '@grpc/grpc-js';

import { loadPackageDefinition } from '../../../common/proto/load.ts';
import { fromGrpcError } from '../../../common/wire/grpc-errors.ts';
import type {
  HostEnrolReply,
  HostEnrolRequest,
  HostFrame,
  HostRenewReply,
  HostRenewRequest,
  ProviderFrame,
} from '../../../common/wire/host-control-messages.ts';
import { RotatingTls } from '../transport/rotating-tls.ts';
import { checkProvider } from './provider-tls.ts';

/** Enrolment is one small call: 15 s is ample even over a slow WAN. */
const ENROL_DEADLINE_MS = 15_000;

export interface ProviderClient {
  enrol(req: HostEnrolRequest): Promise<HostEnrolReply>;
  connect(): grpc.ClientDuplexStream<HostFrame, ProviderFrame>;
  /** Renewal steps 1-2: the provider signs a CSR for our own identity (needs `own`). */
  renew(csrPem: string): Promise<HostRenewReply>;
  close(): void;
}

interface RawClient extends grpc.Client {
  Enrol(
    req: HostEnrolRequest,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r?: HostEnrolReply) => void,
  ): void;
  Connect(): grpc.ClientDuplexStream<HostFrame, ProviderFrame>;
  Renew(
    req: HostRenewRequest,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r?: HostRenewReply) => void,
  ): void;
}

export function createProviderClient(a: {
  /** HOST:PORT of the provider's --listen. */
  target: string;
  rootCaPem: string;
  /** The pinned provider CA: a fingerprint, or the live pins (provider-pins.ts). */
  provider: { vault: string; intermediateFingerprint: string | (() => readonly string[]) };
  /**
   * The host's key and certificate chain; absent while enrolling. A RotatingTls (whose CA
   * bundle then replaces rootCaPem) makes reconnects present a renewed certificate.
   */
  own?: { keyPem: string; certPem: string } | RotatingTls;
}): ProviderClient {
  const pkg = grpc.loadPackageDefinition(loadPackageDefinition()) as unknown as {
    secondsite: { v1: { ProviderHosts: grpc.ServiceClientConstructor } };
  };
  const check = checkProvider(a.provider.vault, a.provider.intermediateFingerprint);
  const own = a.own;
  const creds =
    own instanceof RotatingTls
      ? own.channelCredentials(check)
      : grpc.credentials.createSsl(
          Buffer.from(a.rootCaPem),
          own === undefined ? null : Buffer.from(own.keyPem),
          own === undefined ? null : Buffer.from(own.certPem),
          { checkServerIdentity: check },
        );
  const client = new pkg.secondsite.v1.ProviderHosts(a.target, creds, {
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': 5_000,
    // The provider is trusted by its identity (checkProvider), not the name dialled; a fixed
    // SNI name also keeps an IP address out of the TLS server name (RFC 6066 forbids it).
    'grpc.ssl_target_name_override': 'secondsite-provider',
  }) as unknown as RawClient;
  return {
    enrol: (req) =>
      new Promise((resolve, reject) =>
        client.Enrol(req, { deadline: Date.now() + ENROL_DEADLINE_MS }, (e, r) =>
          e || r === undefined
            ? reject(fromGrpcError(e as grpc.ServiceError, `the provider at ${a.target}`))
            : resolve(r),
        ),
      ),
    connect: () => client.Connect(),
    renew: (csrPem) =>
      new Promise((resolve, reject) =>
        client.Renew({ csrPem }, { deadline: Date.now() + ENROL_DEADLINE_MS }, (e, r) =>
          e || r === undefined
            ? reject(fromGrpcError(e as grpc.ServiceError, `the provider at ${a.target}`))
            : resolve(r),
        ),
      ),
    close: () => client.close(),
  };
}
