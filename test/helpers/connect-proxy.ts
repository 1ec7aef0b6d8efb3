/**
 * A minimal HTTP CONNECT proxy for tests: tunnels TCP to the requested host:port and counts
 * the tunnels it opened, so a test can prove traffic went through it. `refuse` answers every
 * CONNECT with 407 instead. `hold()` drops what the far end sends back, in every tunnel, until
 * `release()`: a one-way silent partition (requests arrive, answers are lost).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TestProxy {
  readonly url: string;
  readonly targets: string[];
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

export async function startConnectProxy(opts: { refuse?: boolean } = {}): Promise<TestProxy> {
  const targets: string[] = [];
  const sockets = new Set<Socket>();
  let holding = false;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const target = /^CONNECT (\S+) HTTP\/1\.1/.exec(head)?.[1];
      if (target === undefined || opts.refuse) {
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
        return;
      }
      targets.push(target);
      const colon = target.lastIndexOf(':');
      const upstream = connect(
        Number(target.slice(colon + 1)),
        target.slice(0, colon).replace(/^\[|\]$/g, ''),
      );
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      upstream.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        client.pipe(upstream);
        upstream.on('data', (d: Buffer) => {
          if (!holding) client.write(d);
        });
        upstream.on('end', () => client.end());
      });
    };
    client.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    targets,
    hold: () => void (holding = true),
    release: () => void (holding = false),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
