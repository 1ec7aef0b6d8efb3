/**
 * Client of the local admin API on <data>/control.sock, used by `secondsite host vm ...` and
 * the demo. Returns plain JSON shapes (numbers as numbers, times as ISO text) that the CLI
 * prints as they are with --json.
 */
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { loadPackageDefinition } from '../../../common/proto/load.ts';
import { fromGrpcError } from '../../../common/wire/grpc-errors.ts';
import { layout } from '../vm/layout.ts';
import type {
  CreateVmRequest,
  CutRecoveryPointRequest,
  ListRecoveryPointsReply,
  ListVmsReply,
  LocalVmMsg,
  PairVmRequest,
  ReadPointReply,
  ReadPointRequest,
  ReplicationStatusMsg,
  ProtectVmRequest,
  RecoveryPointMsg,
  VmRef,
} from './host-local-types.ts';

export interface PointJson {
  id: string;
  /** ISO 8601, UTC. */
  time: string;
  timeMs: number;
  type: 'crash-consistent' | 'app-consistent';
  segment: number;
  /** Present when an app-consistent point was asked for and the guest did not freeze. */
  freezeFailed?: string;
}

export interface VmJson {
  name: string;
  id: string;
  state: string;
  protected: boolean;
  copyFrequencySeconds: number;
  appConsistentHours: number;
  disks: Array<{ index: number; sizeBytes: number; nbd: string; file: string }>;
  nics: Array<{ network: string; subnet: string }>;
  journalState: string;
  unshippedBytes: number;
  guestAgentSocket: string;
  guestConnected: boolean;
  latestRecoveryPoint: PointJson | null;
  /** Present when the VM is paired for replication. */
  replication?: ReplicationJson;
}

export interface ReplicationJson {
  role: 'primary' | 'replica';
  peer: string;
  peerAddress: string;
  epoch: number;
  baseline: string;
  state:
    'idle' | 'connecting' | 'initial-copy' | 'shipping' | 'backoff' | 'stopped' | 'incompatible';
  lastAckedSeq: number;
  lastError: string;
  /** ISO 8601, or null for never. */
  lastShippedAt: string | null;
  /** Primary: the initial copy's progress (bytes durable on the replica), once one ran. */
  copy?: { bytesDone: number; bytesTotal: number };
  /** Primary: the last resync this agent ran (bytes hashed and compared, bytes sent), if any. */
  resync?: { bytesCompared: number; bytesSent: number };
  /** Replica: segments applied since the agent started, by channel (8084 / 8083). */
  segmentsVia?: { certificate: number; ticket: number };
  /**
   * Replica: block bytes of the cycles' chunks received since the agent started, raw and as
   * they travelled; a live segment's count grows while the primary writes.
   */
  received?: { rawBytes: number; wireBytes: number };
}

function replicationFromMsg(r: ReplicationStatusMsg): ReplicationJson {
  const at = Number(r.lastShippedAtMs);
  return {
    role: r.role as ReplicationJson['role'],
    peer: r.peer,
    peerAddress: r.peerAddress,
    epoch: Number(r.epoch),
    baseline: r.baseline,
    state: r.state as ReplicationJson['state'],
    lastAckedSeq: Number(r.lastAckedSeq),
    lastError: r.lastError,
    lastShippedAt: at > 0 ? new Date(at).toISOString() : null,
    ...(Number(r.copyBytesTotal ?? 0) > 0
      ? { copy: { bytesDone: Number(r.copyBytesDone), bytesTotal: Number(r.copyBytesTotal) } }
      : {}),
    ...(Number(r.resyncBytesCompared ?? 0) > 0 || Number(r.resyncBytesSent ?? 0) > 0
      ? {
          resync: {
            bytesCompared: Number(r.resyncBytesCompared),
            bytesSent: Number(r.resyncBytesSent),
          },
        }
      : {}),
    ...(r.role === 'replica'
      ? {
          segmentsVia: {
            certificate: Number(r.segmentsViaCertificate ?? 0),
            ticket: Number(r.segmentsViaTicket ?? 0),
          },
          received: {
            rawBytes: Number(r.receivedRawBytes ?? 0),
            wireBytes: Number(r.receivedWireBytes ?? 0),
          },
        }
      : {}),
  };
}

type UnaryMethod<T> = (
  req: object,
  options: grpc.CallOptions,
  callback: (e: grpc.ServiceError | null, reply: T) => void,
) => void;

/** A cut may wait up to the freeze timeout (at most 60 s) plus the thaw and the cut itself. */
const CALL_DEADLINE_MS = 120_000;

export function pointFromMsg(p: RecoveryPointMsg): PointJson {
  const timeMs = Number(p.timeMs);
  return {
    id: p.id,
    time: new Date(timeMs).toISOString(),
    timeMs,
    type: p.type === 'RECOVERY_POINT_TYPE_APP_CONSISTENT' ? 'app-consistent' : 'crash-consistent',
    segment: Number(p.segment),
    ...(p.freezeFailed ? { freezeFailed: p.freezeFailed } : {}),
  };
}

export function vmFromMsg(v: LocalVmMsg): VmJson {
  return {
    name: v.name,
    id: v.id,
    state: v.state,
    protected: v.protected,
    copyFrequencySeconds: v.copyFrequencySeconds,
    appConsistentHours: v.appConsistentHours,
    disks: v.disks.map((d) => ({
      index: d.index,
      sizeBytes: Number(d.sizeBytes),
      nbd: d.nbd,
      file: d.file,
    })),
    nics: v.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
    journalState: v.journalState,
    unshippedBytes: Number(v.unshippedBytes),
    guestAgentSocket: v.guestAgentSocket,
    guestConnected: v.guestConnected,
    latestRecoveryPoint: v.latestRecoveryPoint ? pointFromMsg(v.latestRecoveryPoint) : null,
    ...(v.replication ? { replication: replicationFromMsg(v.replication) } : {}),
  };
}

export class HostLocalClient {
  private constructor(
    private readonly client: grpc.Client,
    private readonly what: string,
  ) {}

  /** Refuses at once (SS_UNAVAILABLE) when no agent serves the data folder. */
  static connect(dataDir: string): HostLocalClient {
    const socket = layout.controlSocket(dataDir);
    const what = `the host agent of data folder ${dataDir}`;
    if (!existsSync(socket)) {
      throw new SecondsiteError(
        'SS_UNAVAILABLE',
        `${what} is not running (no ${socket}); start it with: secondsite host start --standalone --data ${dataDir}`,
        { dataDir },
      );
    }
    const pkg = grpc.loadPackageDefinition(loadPackageDefinition()) as unknown as {
      secondsite: { v1: { HostLocal: grpc.ServiceClientConstructor } };
    };
    // Insecure credentials: see control-server.ts (a 0600 unix socket, never TCP).
    const client = new pkg.secondsite.v1.HostLocal(
      `unix://${socket}`,
      grpc.credentials.createInsecure(),
    );
    return new HostLocalClient(client, what);
  }

  close(): void {
    this.client.close();
  }

  async createVm(req: CreateVmRequest): Promise<VmJson> {
    return vmFromMsg(await this.call<LocalVmMsg>('createVm', req));
  }
  async startVm(req: VmRef): Promise<VmJson> {
    return vmFromMsg(await this.call<LocalVmMsg>('startVm', req));
  }
  async stopVm(req: VmRef): Promise<VmJson> {
    return vmFromMsg(await this.call<LocalVmMsg>('stopVm', req));
  }
  async protectVm(req: ProtectVmRequest): Promise<VmJson> {
    return vmFromMsg(await this.call<LocalVmMsg>('protectVm', req));
  }
  async unprotectVm(req: VmRef): Promise<VmJson> {
    return vmFromMsg(await this.call<LocalVmMsg>('unprotectVm', req));
  }
  async cut(req: CutRecoveryPointRequest): Promise<PointJson> {
    return pointFromMsg(await this.call<RecoveryPointMsg>('cutRecoveryPoint', req));
  }
  async listVms(): Promise<VmJson[]> {
    return (await this.call<ListVmsReply>('listVms', {})).vms.map(vmFromMsg);
  }
  async listPoints(req: VmRef): Promise<PointJson[]> {
    return (await this.call<ListRecoveryPointsReply>('listRecoveryPoints', req)).points.map(
      pointFromMsg,
    );
  }

  async pairVm(req: PairVmRequest): Promise<VmJson> {
    return vmFromMsg(await this.call<LocalVmMsg>('pairVm', req));
  }
  async readPoint(req: ReadPointRequest): Promise<{ bytes: number }> {
    return { bytes: Number((await this.call<ReadPointReply>('readPoint', req)).bytes) };
  }

  private call<T>(method: string, req: object): Promise<T> {
    const fn = (this.client as unknown as Record<string, UnaryMethod<T> | undefined>)[method];
    if (!fn) throw new SecondsiteError('SS_INTERNAL', `HostLocal has no method ${method}`);
    return new Promise<T>((resolve, reject) => {
      fn.call(
        this.client,
        req,
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (e: grpc.ServiceError | null, reply: T) =>
          e ? reject(fromGrpcError(e, this.what)) : resolve(reply),
      );
    });
  }
}
