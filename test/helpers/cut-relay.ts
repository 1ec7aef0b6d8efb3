/**
 * A TCP relay for connection-break tests: forwards every accepted connection to `target` and
 * lets a test stall the client → server direction (the peer stops reading, so HTTP/2 flow
 * control blocks the writer) and then drop every connection at once (RST, as a crashed or
 * partitioned peer would look to the writer). New connections are relayed normally.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface CutRelay {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops forwarding client → server on the open connections. */
  stall(): void;
  /** Destroys every open connection (both sides). */
  drop(): void;
  close(): Promise<void>;
}

export async function startCutRelay(target: number): Promise<CutRelay> {
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(target, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return accepted;
    },
    stall() {
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        client.pause();
      }
    },
    drop() {
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const { client, upstream } of pairs) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => r());
      }),
  };
}
