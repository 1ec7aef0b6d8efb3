/**
 * Opens the WebSocket to the coordinator (wss://…/api/v1/agent), directly or through the
 * CONNECT proxy, with one of two trust modes:
 *  - `pin`: first contact, before registration. The provider has only the CA fingerprint from
 *    the key file: it accepts the server when the chain it presents ends in a CA with exactly
 *    that fingerprint, the leaf verifies up to it, and the leaf names the host dialled. The CA
 *    found is returned so it can be stored.
 *  - `verified`: later connections; Node's TLS verifies the chain against the stored root CA
 *    and presents the provider's client certificate.
 */
import type { IncomingMessage } from 'node:http';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { verifyChain } from '../../../certs/verify.ts';
import { fingerprintOfPem } from '../../../certs/inspect.ts';
import { pemOfDer, presentedChain } from '../../../certs/peer.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import {
  AGENT_CHANNEL_PATH,
  AGENT_MAX_FRAME,
} from '../../../common/wire/agent-channel-messages.ts';
import { ConnectProxyAgent } from './connect-proxy-agent.ts';

export type Trust =
  | { readonly mode: 'pin'; readonly fingerprint: string }
  | {
      readonly mode: 'verified';
      readonly rootCaPem: string;
      readonly keyPem: string;
      readonly certPem: string;
    };

export interface OpenOptions {
  readonly coordinatorUrl: string;
  readonly trust: Trust;
  readonly proxy?: URL;
  /** Gives up connecting after this long. @default 10 s */
  readonly handshakeMs?: number;
  readonly now: () => number;
}

export interface OpenSocket {
  readonly ws: WebSocket;
  /** The CA the pin matched (pin mode only). */
  readonly pinnedCaPem?: string;
}

/** The pin check of first contact; returns the CA's PEM. */
export function checkPinnedChain(
  socket: TLSSocket,
  hostname: string,
  fingerprint: string,
  now: number,
): string {
  const leaf = socket.getPeerCertificate(true);
  const pems = presentedChain(leaf).map((c) => pemOfDer(c.raw));
  const ca = pems.find((p) => fingerprintOfPem(p) === fingerprint);
  if (ca === undefined) {
    throw new SecondsiteError(
      'SS_FINGERPRINT_MISMATCH',
      `the server at ${hostname} does not present the CA pinned in the key (fingerprint ${fingerprint.slice(0, 16)}…); it is not the coordinator that issued the key`,
      { expected: fingerprint, presented: pems.map((p) => fingerprintOfPem(p)) },
    );
  }
  const chain = verifyChain(pems.filter((p) => p !== ca).join(''), [ca], now);
  if (!chain.ok) {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      `coordinator certificate refused: ${chain.message}`,
      {
        reason: chain.reason,
      },
    );
  }
  const nameError = checkServerIdentity(hostname, leaf);
  if (nameError !== undefined) {
    throw new SecondsiteError('SS_CERT_INVALID', `coordinator certificate: ${nameError.message}`);
  }
  return ca;
}

function channelUrl(coordinatorUrl: string): URL {
  const u = new URL(AGENT_CHANNEL_PATH, coordinatorUrl);
  u.protocol = 'wss:';
  return u;
}

function unavailable(url: URL, e: unknown): SecondsiteError {
  const why = e instanceof Error ? e.message : String(e);
  return new SecondsiteError(
    'SS_UNAVAILABLE',
    `cannot reach the coordinator at ${url.host}: ${why}`,
    {
      url: url.origin,
    },
  );
}

export function openCoordinatorSocket(opts: OpenOptions): Promise<OpenSocket> {
  const url = channelUrl(opts.coordinatorUrl);
  const trust = opts.trust;
  const tlsOptions =
    trust.mode === 'pin'
      ? { rejectUnauthorized: false }
      : { ca: trust.rootCaPem, key: trust.keyPem, cert: trust.certPem };
  const ws = new WebSocket(url, {
    ...tlsOptions,
    maxPayload: AGENT_MAX_FRAME,
    handshakeTimeout: opts.handshakeMs ?? 10_000,
    ...(opts.proxy === undefined ? {} : { agent: new ConnectProxyAgent(opts.proxy) }),
  });
  ws.binaryType = 'nodebuffer';
  return new Promise<OpenSocket>((resolve, reject) => {
    let pinnedCaPem: string | undefined;
    let refused: SecondsiteError | undefined;
    ws.once('upgrade', (res: IncomingMessage) => {
      if (trust.mode !== 'pin') return;
      try {
        pinnedCaPem = checkPinnedChain(
          res.socket as TLSSocket,
          url.hostname.replace(/^\[|\]$/g, ''),
          trust.fingerprint,
          opts.now(),
        );
      } catch (e) {
        refused = e as SecondsiteError;
        ws.terminate();
      }
    });
    ws.once('open', () => {
      ws.removeAllListeners('error');
      ws.on('error', () => undefined); // later errors surface as 'close'
      resolve({ ws, ...(pinnedCaPem === undefined ? {} : { pinnedCaPem }) });
    });
    ws.once('error', (e) =>
      reject(refused ?? (e instanceof SecondsiteError ? e : (certError(e) ?? unavailable(url, e)))),
    );
    ws.once('close', () => reject(refused ?? unavailable(url, new Error('connection closed'))));
  });
}

/** TLS verification failures of a verified connection are certificate problems, not outages. */
function certError(e: Error): SecondsiteError | undefined {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return new SecondsiteError('SS_CERT_INVALID', `coordinator certificate refused: ${e.message}`, {
      reason: code,
    });
  }
  return undefined;
}
