/**
 * A fake receiver for replication transport tests: it stands in for the recovery store
 * (agent/host/recovery), which the sender/receiver wiring plugs in later. It keeps applied
 * segments in memory and follows the store's contract: exactly once, in order, 'duplicate' for
 * an old seq, SS_SEGMENT_OUT_OF_ORDER for a gap.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { IncomingSegment } from '../../agent/host/recovery/segment-check.ts';
import type {
  ReplicationHandlers,
  StreamContext,
} from '../../agent/host/transport/replication-server.ts';

export class FakeReplicaSink implements ReplicationHandlers {
  readonly applied = new Map<string, IncomingSegment[]>();
  readonly calls: Array<{ vmId: string; seq: number; caller: string }> = [];

  lastApplied(vmId: string): number {
    return this.applied.get(vmId)?.at(-1)?.seq ?? 0;
  }

  newestPointId(vmId: string): string {
    return this.applied.get(vmId)?.at(-1)?.point.id ?? '';
  }

  async applySegment(ctx: StreamContext, seg: IncomingSegment): Promise<'applied' | 'duplicate'> {
    this.calls.push({ vmId: ctx.vmId, seq: seg.seq, caller: ctx.caller.uri });
    const last = this.lastApplied(ctx.vmId);
    if (seg.seq <= last) return 'duplicate';
    if (seg.seq !== last + 1) {
      throw new SecondsiteError('SS_SEGMENT_OUT_OF_ORDER', `expected ${last + 1}, got ${seg.seq}`);
    }
    const list = this.applied.get(ctx.vmId) ?? [];
    list.push(seg);
    this.applied.set(ctx.vmId, list);
    return 'applied';
  }
}
