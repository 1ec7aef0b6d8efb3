/**
 * The guest's end of the guest-agent channel (proto/secondsite/v1/guest_agent.proto has the
 * flow). Connects to the VM's socket, says hello, and answers freeze and thaw requests through
 * the workload's hooks. Reconnects while open (the host agent may restart), and never stays
 * frozen: a freeze ends on thaw, or by itself after the request's timeout.
 *
 * States: connecting → ready (hello answered) → connecting again when the socket closes;
 * closed after close().
 */
import { connect, type Socket } from 'node:net';
import { FrameReader, frame } from '../../common/wire/length-prefixed.ts';
import {
  GUEST_MAX_FRAME,
  GUEST_PROTOCOL,
  guestAgentCodec,
  type GuestAgentEnvelope,
} from '../../common/wire/guest-agent-messages.ts';

export type GuestClientState = 'connecting' | 'ready' | 'closed';

export interface QuiesceHooks {
  /** Stop new writes, wait for those in flight, flush. Rejects if that is impossible. */
  freeze(): Promise<void>;
  /** Resume writing. */
  thaw(reason: 'thaw-request' | 'timeout'): void;
}

export interface GuestAgentClient {
  readonly state: GuestClientState;
  close(): void;
}

const RECONNECT_MS = 250;

export function connectGuestAgent(opts: {
  socketPath: string;
  vm: string;
  hooks: QuiesceHooks;
  note?: (msg: string) => void;
}): GuestAgentClient {
  let state: GuestClientState = 'connecting';
  let socket: Socket | undefined;
  let autoThaw: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  const note = opts.note ?? (() => undefined);

  const send = (s: Socket, env: GuestAgentEnvelope): void => {
    s.write(frame(guestAgentCodec().encode(env)));
  };

  const endFreeze = (reason: 'thaw-request' | 'timeout'): void => {
    if (!autoThaw) return;
    clearTimeout(autoThaw);
    autoThaw = undefined;
    opts.hooks.thaw(reason);
  };

  const onFreeze = (s: Socket, id: string, timeoutMs: number): void => {
    clearTimeout(autoThaw);
    autoThaw = setTimeout(() => {
      note('thawing by itself: the host did not thaw in time');
      endFreeze('timeout');
    }, timeoutMs);
    opts.hooks.freeze().then(
      () => send(s, { step: 'freezeReply', freezeReply: { id, ok: true, error: '' } }),
      (e: unknown) => {
        endFreeze('timeout');
        send(s, { step: 'freezeReply', freezeReply: { id, ok: false, error: String(e) } });
      },
    );
  };

  const dispatch = (s: Socket, env: GuestAgentEnvelope): void => {
    switch (env.step) {
      case 'hello':
        state = 'ready';
        note(`guest agent connected (protocol ${env.hello.protocolMax})`);
        return;
      case 'freezeRequest':
        return onFreeze(s, env.freezeRequest.id, env.freezeRequest.timeoutMs);
      case 'thawRequest':
        endFreeze('thaw-request');
        send(s, { step: 'thawReply', thawReply: { id: env.thawRequest.id } });
        return;
      default:
        s.destroy(); // a host may not send replies: the peer is confused
    }
  };

  const open = (): void => {
    if (state === 'closed') return;
    const s = connect(opts.socketPath);
    socket = s;
    const reader = new FrameReader(GUEST_MAX_FRAME);
    s.on('connect', () =>
      send(s, {
        step: 'hello',
        hello: { vm: opts.vm, protocolMin: GUEST_PROTOCOL.min, protocolMax: GUEST_PROTOCOL.max },
      }),
    );
    s.on('data', (chunk: Buffer) => {
      try {
        for (const f of reader.push(chunk)) dispatch(s, guestAgentCodec().decode(f));
      } catch {
        s.destroy();
      }
    });
    s.on('error', () => undefined); // 'close' follows and reconnects
    s.on('close', () => {
      endFreeze('timeout'); // the host is gone: nobody will thaw us
      if (state === 'closed') return;
      state = 'connecting';
      retry = setTimeout(open, RECONNECT_MS);
    });
  };

  open();
  return {
    get state() {
      return state;
    },
    close(): void {
      state = 'closed';
      clearTimeout(retry);
      endFreeze('timeout');
      socket?.destroy();
    },
  };
}
