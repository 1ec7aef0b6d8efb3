/**
 * Raises the HTTP/2 receive windows of a grpc-js server's sessions.
 *
 * Why: grpc-js 1.14 servers ignore `grpc-node.flow_control_window` and keep Node's 64 KiB
 * connection and stream windows, which caps a client-to-server stream at ~0.35 GB/s on
 * loopback (LAB.md; grpc/grpc-node#3058 would fix it upstream). Segments flow client → server,
 * so the server's receive window is what limits shipping.
 *
 * How: grpc-js keeps its Node http2 servers in a private `http2Servers` map (keys are the
 * `Http2SecureServer`s it made in bindAsync). There is no public hook for sessions, so this
 * listens to each one's 'session' event and (1) raises the connection window with
 * `setLocalWindowSize`, (2) sends SETTINGS_INITIAL_WINDOW_SIZE for the streams. When a grpc-js
 * upgrade moves the map, `raiseServerWindows` returns 0 and the caller logs it: shipping then
 * still works, only at the default window's speed (a component test catches the change).
 */
import type { EventEmitter } from 'node:events';
import type { Http2Session } from 'node:http2';
import type { Server } from '@grpc/grpc-js';

const raised = new WeakSet<object>();
/** Largest HTTP/2 DATA frame the peer may send us (default 16 KiB; fewer frames per chunk). */
const MAX_FRAME_SIZE = 1024 * 1024;

function raise(session: Http2Session, bytes: number): void {
  // Both calls are no-ops on a session that is already closing.
  if (session.destroyed || session.closed) return;
  session.setLocalWindowSize(bytes);
  session.settings({ initialWindowSize: bytes, maxFrameSize: MAX_FRAME_SIZE });
}

/**
 * Hooks every http2 server `server` currently listens with (call after bindAsync). Returns how
 * many it hooked; 0 means grpc-js internals changed and windows stay at the default.
 */
export function raiseServerWindows(server: Server, bytes: number): number {
  const internal = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(internal instanceof Map)) return 0;
  let hooked = 0;
  for (const h2 of internal.keys() as IterableIterator<EventEmitter>) {
    if (typeof h2?.on !== 'function') continue;
    hooked++;
    if (raised.has(h2)) continue;
    raised.add(h2);
    h2.on('session', (session: Http2Session) => {
      const apply = (): void => raise(session, bytes);
      // The session's settings are exchanged at connect; changing them before that is refused.
      if (session.connecting) session.once('connect', apply);
      else apply();
    });
  }
  return hooked;
}

/** The local (receive) window of a server-side session, for tests. */
export function sessionWindows(server: Server): number[] {
  const internal = (server as unknown as { sessions?: unknown }).sessions;
  if (!(internal instanceof Map)) return [];
  return [...(internal.keys() as IterableIterator<Http2Session>)].map(
    (s) => s.state.localWindowSize ?? 0,
  );
}
