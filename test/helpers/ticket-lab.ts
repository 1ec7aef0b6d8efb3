/**
 * Helpers for the 8083 tests: a pass-through TCP tap that records every byte between a client
 * and a port (to search the wire for plaintext), and the credentials' JSON form for the
 * faketime skew driver (ticket-skew-driver.ts).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ClientCredentials } from '../../common/tickets/ticket.ts';

export interface Tap {
  readonly port: number;
  /** Bytes client → server, per connection, in order. */
  readonly up: Buffer[][];
  /** Bytes server → client, per connection, in order. */
  readonly down: Buffer[][];
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0 and forwards each connection to 127.0.0.1:`target`, recording it. */
export async function startTap(target: number): Promise<Tap> {
  const up: Buffer[][] = [];
  const down: Buffer[][] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const u: Buffer[] = [];
    const d: Buffer[] = [];
    up.push(u);
    down.push(d);
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (b: Buffer) => u.push(Buffer.from(b)));
    upstream.on('data', (b: Buffer) => d.push(Buffer.from(b)));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    up,
    down,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The argument of test/helpers/ticket-skew-driver.ts (JSON; the ticket's Buffers as base64). */
export interface SkewDriverInput {
  readonly port: number;
  readonly expectedPeer: string;
  readonly credentials: {
    readonly client: string;
    readonly server: string;
    readonly ticket: { server: string; keyVersion: number; sealedBody: string };
    readonly sessionKey: string;
    readonly endTime: number;
  };
}

export function encodeCredentials(c: ClientCredentials): SkewDriverInput['credentials'] {
  return {
    client: c.client,
    server: c.server,
    ticket: { ...c.ticket, sealedBody: c.ticket.sealedBody.toString('base64') },
    sessionKey: c.sessionKey.toString('base64'),
    endTime: c.endTime,
  };
}

export function decodeCredentials(c: SkewDriverInput['credentials']): ClientCredentials {
  return {
    client: c.client,
    server: c.server,
    ticket: { ...c.ticket, sealedBody: Buffer.from(c.ticket.sealedBody, 'base64') },
    sessionKey: Buffer.from(c.sessionKey, 'base64'),
    endTime: c.endTime,
  };
}
