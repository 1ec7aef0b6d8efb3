/**
 * Serves one BlockDevice as one NBD export on one unix socket (ARCHITECTURE.md "Data plane":
 * any NBD client can be the guest). All connections share the device object, so a FLUSH or
 * FUA on one connection covers writes completed on every other: NBD_FLAG_CAN_MULTI_CONN holds.
 *
 * Lifecycle: `listening` → `closing` → `closed`. close():
 *   1. stops accepting and removes the socket file;
 *   2. connections still haggling are dropped; in transmission, every request in flight is
 *      answered ESHUTDOWN and so is every request that still arrives (proto.md, server shutdown);
 *   3. waits for the device calls already started to settle, so the owner may close the device
 *      as soon as close() resolves (the device itself is never closed here);
 *   4. ends every connection and waits until all are gone.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import { MAX_STRING, TransmissionFlag } from '../../../common/nbd/protocol.ts';
import { SocketReader } from '../../../common/nbd/socket-reader.ts';
import type { BlockDevice } from './block-device.ts';
import { negotiate, type ExportInfo } from './handshake.ts';
import { InFlight } from './in-flight.ts';
import { TransmissionSession } from './transmission.ts';

export interface NbdExport {
  /** `nbd+unix:///<export>?socket=<path>`, usable by qemu, libnbd tools and NbdClient. */
  readonly uri: string;
  readonly socketPath: string;
  /** Open client connections, handshaking or transmitting. */
  connections(): number;
  close(): Promise<void>;
}

export interface ServeExportOptions {
  readonly socketPath: string;
  readonly exportName: string;
  readonly device: BlockDevice;
  readonly log: Logger;
  readonly description?: string;
}

const TRANSMISSION_FLAGS =
  TransmissionFlag.HAS_FLAGS |
  TransmissionFlag.SEND_FLUSH |
  TransmissionFlag.SEND_FUA |
  TransmissionFlag.SEND_TRIM |
  TransmissionFlag.SEND_WRITE_ZEROES |
  TransmissionFlag.CAN_MULTI_CONN;

interface Connection {
  readonly socket: Socket;
  session: TransmissionSession | undefined;
  done: Promise<void>;
}

export async function serveExport(opts: ServeExportOptions): Promise<NbdExport> {
  if (Buffer.byteLength(opts.exportName, 'utf8') > MAX_STRING) {
    throw badInput('exportName', `longer than ${MAX_STRING} bytes`);
  }
  if (opts.description !== undefined && Buffer.byteLength(opts.description) > MAX_STRING) {
    throw badInput('description', `longer than ${MAX_STRING} bytes`);
  }
  removeStaleSocket(opts.socketPath);
  const server = new ExportServer(opts);
  await server.listen();
  return server;
}

/** Removes a socket left by a crashed process; refuses to delete anything that is not one. */
function removeStaleSocket(path: string): void {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) throw badInput('socketPath', `${path} exists and is not a socket`);
  unlinkSync(path);
}

class ExportServer implements NbdExport {
  readonly uri: string;
  readonly socketPath: string;
  private readonly server: Server;
  private readonly conns = new Set<Connection>();
  private readonly inFlight = new InFlight();
  private readonly info: ExportInfo;
  private nextId = 1;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: ServeExportOptions) {
    this.socketPath = opts.socketPath;
    this.uri = exportUri(opts.exportName, opts.socketPath);
    this.info = {
      name: opts.exportName,
      description: opts.description,
      size: opts.device.size,
      preferredBlockSize: opts.device.preferredBlockSize,
      transmissionFlags: TRANSMISSION_FLAGS,
    };
    this.server = createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void =>
        reject(
          new SecondsiteError(
            'SS_IO',
            `cannot listen on ${this.socketPath}: ${err.message}`,
            {
              socketPath: this.socketPath,
            },
            { cause: err },
          ),
        );
      this.server.once('error', fail);
      this.server.listen(this.socketPath, () => {
        this.server.off('error', fail);
        resolve();
      });
    });
    // Between listen and chmod the socket has the umask's mode; the folder it lives in is
    // the agent's private run folder, so nobody else can reach it in that window.
    chmodSync(this.socketPath, 0o600);
    this.server.on('error', (err) => this.opts.log.warn({ err }, 'nbd listener error'));
    this.opts.log.info({ uri: this.uri }, 'nbd export listening');
  }

  connections(): number {
    return this.conns.size;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const log = this.opts.log.child({ conn: this.nextId++ });
    log.info('nbd client connected');
    socket.on('error', (err) => log.debug({ err }, 'nbd socket error'));
    const conn: Connection = { socket, session: undefined, done: Promise.resolve() };
    this.conns.add(conn);
    conn.done = this.serve(conn, log)
      .catch((err: unknown) => log.warn({ err }, 'nbd connection failed'))
      .finally(() => {
        socket.destroy();
        this.conns.delete(conn);
        log.info('nbd client disconnected');
      });
  }

  private async serve(conn: Connection, log: Logger): Promise<void> {
    const { socket } = conn;
    const reader = new SocketReader(socket);
    const entered = await negotiate({
      socket,
      reader,
      info: this.info,
      log,
      isClosing: () => this.closing !== undefined,
    });
    if (!entered || this.closing) return;
    const session = new TransmissionSession({
      socket,
      reader,
      device: this.opts.device,
      inFlight: this.inFlight,
      log,
    });
    conn.session = session;
    const end = await session.run();
    if (end === 'disconnect') await endSocket(socket);
  }

  private async shutdown(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone: nothing to remove
    }
    for (const conn of this.conns) {
      if (conn.session) conn.session.shutdown();
      else conn.socket.destroy();
    }
    await this.inFlight.idle();
    await Promise.all([...this.conns].map((c) => endSocket(c.socket).then(() => c.done)));
    await serverClosed;
    this.opts.log.info({ uri: this.uri }, 'nbd export closed');
  }
}

/**
 * A client that stopped reading would keep its queued replies unflushed forever; after this
 * grace period close() stops waiting for it.
 */
const END_GRACE_MS = 5000;

/** Half-closes after queued replies are flushed, then releases the socket. */
function endSocket(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), END_GRACE_MS);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end(() => socket.destroy());
  });
}

/** Percent-encodes the parts of the URI; '/' stays readable in the socket path. */
export function exportUri(exportName: string, socketPath: string): string {
  const path = encodeURIComponent(socketPath).replaceAll('%2F', '/');
  return `nbd+unix:///${encodeURIComponent(exportName)}?socket=${path}`;
}
