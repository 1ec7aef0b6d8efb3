/**
 * An https.Agent that reaches the coordinator through an HTTP CONNECT proxy (`--proxy URL`):
 * it opens a TCP connection to the proxy, asks it to CONNECT to the coordinator's host:port,
 * and runs TLS to the coordinator inside that tunnel, so the proxy sees only ciphertext and the
 * certificate checks are exactly those of a direct connection.
 */
import { Agent, type AgentOptions, type RequestOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { SecondsiteError } from '../../../common/errors/errors.ts';

/** A proxy answer larger than this is not an HTTP response head. */
const MAX_HEAD = 16 * 1024;

function tunnel(proxy: URL, host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(Number(proxy.port || 80), proxy.hostname);
    let head = '';
    const fail = (why: string): void => {
      sock.destroy();
      reject(
        new SecondsiteError('SS_UNAVAILABLE', `proxy ${proxy.host}: ${why}`, { proxy: proxy.host }),
      );
    };
    sock.once('error', (e) => fail(e.message));
    sock.once('connect', () => {
      const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      const auth =
        proxy.username === ''
          ? ''
          : `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}\r\n`;
      sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
    });
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) fail('answered with an oversized head');
        return;
      }
      sock.off('data', onData);
      sock.removeAllListeners('error');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
      const statusLine = head.split('\r\n')[0] ?? '';
      if (status === '407') {
        // Wrong or missing proxy credentials: retrying cannot help, the operator must act.
        sock.destroy();
        return reject(
          new SecondsiteError(
            'SS_UNAUTHENTICATED',
            `proxy ${proxy.host} refused the tunnel (${statusLine}); check the user and password in --proxy`,
            { proxy: proxy.host },
          ),
        );
      }
      if (status !== '200') return fail(`refused the tunnel (${statusLine})`);
      // Bytes after the head already belong to the tunnel (the server speaks first in TLS 1.3
      // only after our hello, so this is normally empty).
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      if (rest.length > 0) sock.unshift(rest);
      resolve(sock);
    };
    sock.on('data', onData);
  });
}

export class ConnectProxyAgent extends Agent {
  constructor(
    private readonly proxy: URL,
    opts: AgentOptions = {},
  ) {
    super({ ...opts, keepAlive: false });
  }

  override createConnection(
    requestOptions: RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    const options = requestOptions as ConnectionOptions & { host?: string; port?: number | string };
    const host = options.host ?? 'localhost';
    const port = Number(options.port ?? 443);
    tunnel(this.proxy, host, port).then(
      (socket) => {
        const servername = options.servername ?? (/^[\d.:]+$/.test(host) ? undefined : host);
        const tls = tlsConnect({ ...options, socket, ...(servername ? { servername } : {}) });
        callback?.(null, tls);
      },
      (e: unknown) => callback?.(e as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}
