/**
 * The host side of failover (R23-R27): what a host does for the failover commands of
 * host_control.proto (20-26) and for a reverse pairing (pair_vm with a baseline). The state of
 * each VM is in failover-state.ts, written before every answer.
 *
 * Design: the failed-over VM runs on a VIEW until commit. A failover does not revert the
 * replica: the VM is served from the chosen point through the same view as a test failover
 * (test-view.ts: store.read at the point, plus an overlay that keeps the VM's writes, durable
 * at each flush), with the point pinned in the store. So every other retained point stays
 * readable and change_point can move to an older or a newer one (the VM restarts there; its
 * writes at the old point are discarded, as a restart from another point means). Commit makes
 * the disks the VM's own: the store reverts the disks to the point (undo data) and drops the
 * others, then, with the guest's requests held, a journal opens on the disks, the overlay's
 * blocks are written through it and the exports switch to the journaled disks. From then on
 * every write is journaled (segment 1 = the writes since failover), which is what reverse
 * replication ships: 'in-sync' ships that journal to a former primary whose disks equal the
 * point (planned), 'resync' compares hashes first (unplanned).
 *
 * Per command, in order (each step idempotent; a resend or a restart continues):
 *  test_failover (replica): resolve and pin the point → state.test → open the view, serve
 *    "<vm>-test" exports. Replication goes on; the view stays at its point. One test per VM.
 *    The test VM survives an agent restart (reopened from its state with its flushed writes).
 *  cleanup_test: close the exports and the view (overlay deleted) → unpin → state.test gone.
 *  prepare_failover (primary): state.prepared 'preparing' (the VM no longer starts for a
 *    guest) → detach the guest (journal stays open) → cut the final point → wait for the
 *    peer's ack → stop (journal closed, images caught up) → SHA-256 of each image →
 *    'prepared'. Needs replication running (not paused, journaling, initial copy done).
 *  failover (replica): raise the pairing's epoch (the receiver refuses older epochs from now
 *    on) → pin the point (after any apply in flight) → state.failover 'failed-over' → start
 *    the VM on the view (the start hook serves it) → digests at the point when asked. Needs
 *    nothing from the peer.
 *  change_point: stop → drop the overlay → pin the new point → state → start.
 *  commit_failover: 'committing' → store.commit(point) → materialize (above) → unpair the
 *    replica (store gone) → 'committed'. The VM is protected with COMMIT_PROTECTION until a
 *    reverse pairing sets the policy's.
 *  fence (former primary): state.fence first (start hook refuses, also after a restart) →
 *    pause the pairing (no sender runs) → stop → count the journal bytes never shipped.
 *  pair_vm with baseline 'in-sync' | 'resync': on a former primary (prepared or fenced) the
 *    role swaps to replica: the old pairing, journal and points go, a fresh store starts;
 *    'in-sync' only after a planned failover (prepared). On the new primary the failover must
 *    be committed. The answer's failover.unshipped_bytes says what the former primary discards.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Service } from '../../../common/lifecycle/lifecycle.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { listSegments } from '../journal/journal-dir.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';
import type { NbdExport } from '../nbd/server.ts';
import type { ReplicaStore } from '../recovery/types.ts';
import type { ReplicationStatus } from '../replication/sender.ts';
import { statSync } from 'node:fs';
import { checkSocketPath, layout } from '../vm/layout.ts';
import { diskPath, type VmNic } from '../vm/vm-config.ts';
import type { VmManager, VmView } from '../vm/vm-manager.ts';
import type { PairInput } from '../vm/vm-pairing.ts';
import type { ExternalDisks, RuntimeJournal, StartHook } from '../vm/vm-runtime.ts';
import { choosePoint } from './domain/point-choice.ts';
import { fileDigest, pointDigest } from './digests.ts';
import {
  failoverOverlayDir,
  readFailoverState,
  testOverlayDir,
  writeFailoverState,
  type FailoverState,
} from './failover-state.ts';
import { OVERLAY_BLOCK, openTestView, serveTestView, type TestView } from './test-view.ts';

/** Protection of a committed VM until reverse replication sets the policy's. */
export const COMMIT_PROTECTION = Object.freeze({
  copyFrequencySeconds: 300,
  appConsistentHours: 0,
});
/** How long prepare_failover waits for the peer's ack (under the provider's 300 s). */
const DEFAULT_ACK_TIMEOUT_MS = 240_000;
const COPY_PIECE = 8 * 1024 * 1024;

/** What a failover command answers (host_control.proto FailoverResult). */
export interface FailoverOutcome {
  readonly point?: RecoveryPointRecord;
  readonly digests: readonly string[];
  readonly unshippedBytes: number;
  readonly testVm: string;
}

export interface FailoverRequest {
  readonly name: string;
  readonly point: string;
  readonly epoch: number;
  readonly nics: readonly VmNic[];
  readonly digests: boolean;
}

/** What failover needs of replication (replication-host.ts) and of the pairing operations. */
export interface FailoverDeps {
  readonly dataDir: string;
  readonly vms: VmManager;
  readonly replication: {
    store(vm: string): Promise<ReplicaStore>;
    status(view: VmView): Promise<ReplicationStatus | undefined>;
    refresh(): Promise<void>;
  };
  readonly pairing: {
    pair(req: PairInput): Promise<VmView>;
    unpair(name: string, deleteReplica: boolean): Promise<VmView | undefined>;
  };
  readonly clock: Clock;
  readonly log: Logger;
  /** @default 240000 */
  readonly ackTimeoutMs?: number;
}

/** A running test copy, for the inventory. */
export interface TestVmInfo {
  readonly name: string;
  readonly of: string;
  readonly point: RecoveryPointRecord;
  readonly nics: readonly VmNic[];
  readonly disks: ReadonlyArray<{ sizeBytes: number; nbd: string }>;
}

/** A VM's failover standing, for the inventory (HostVm.role / HostVm.failover). */
export interface VmFailoverStatus {
  readonly role: 'primary' | 'replica' | 'none';
  readonly state: string;
  readonly pointId: string;
  readonly epoch: number;
  readonly testVm: string;
}

export interface FailoverOps extends Service {
  testFailover(name: string, point: string, nics: readonly VmNic[]): Promise<FailoverOutcome>;
  cleanupTest(name: string): Promise<FailoverOutcome>;
  prepare(name: string): Promise<FailoverOutcome>;
  failover(req: FailoverRequest): Promise<FailoverOutcome>;
  changePoint(req: FailoverRequest): Promise<FailoverOutcome>;
  commit(name: string): Promise<FailoverOutcome>;
  fence(name: string, epoch: number): Promise<FailoverOutcome>;
  /** pair_vm with a baseline: reverse replication (see the file comment). */
  reverse(
    req: PairInput,
    baseline: 'in-sync' | 'resync',
  ): Promise<{ view: VmView; discardedBytes: number }>;
  /** The outcome a resent command gets, from the state as it is now. */
  outcome(kind: string, name: string): FailoverOutcome | undefined;
  /** VmManager's start hook: refuse (fenced, prepared) or serve the failover view. */
  startHook(vm: string): StartHook | undefined;
  testVms(): TestVmInfo[];
  status(view: VmView): VmFailoverStatus;
}

interface RunningTest {
  readonly view: TestView;
  readonly exports: NbdExport[];
  readonly point: RecoveryPointRecord;
  readonly nics: readonly VmNic[];
}

const testName = (vm: string): string => `${vm}-test`;

function conflict(message: string, details: Record<string, unknown>): SecondsiteError {
  return new SecondsiteError('SS_CONFLICT', message, details);
}

export function createFailoverOps(d: FailoverDeps): FailoverOps {
  const log = d.log.child({ component: 'failover' });
  const tests = new Map<string, RunningTest>();
  /** The failed-over VMs' views, while their runtimes serve them. */
  const views = new Map<string, TestView>();
  const locks = new Map<string, Promise<unknown>>();
  const vmDir = (vm: string): string => layout.vmDir(d.dataDir, vm);
  const read = (vm: string): FailoverState => readFailoverState(vmDir(vm));
  const write = (vm: string, st: FailoverState): void => writeFailoverState(vmDir(vm), st);
  const find = (vm: string): VmView | undefined => d.vms.list().find((v) => v.config.name === vm);

  function serial<T>(vm: string, fn: () => Promise<T>): Promise<T> {
    const next = (locks.get(vm) ?? Promise.resolve()).then(fn);
    locks.set(
      vm,
      next.catch(() => undefined),
    );
    return next;
  }

  function existing(vm: string): VmView {
    const view = find(vm);
    if (!view) throw new SecondsiteError('SS_NOT_FOUND', `no VM named ${vm} on this host`, { vm });
    return view;
  }

  function replica(vm: string): VmView {
    const view = existing(vm);
    if (view.pairing?.role !== 'replica') {
      throw new SecondsiteError('SS_NOT_PAIRED', `VM ${vm} is not a replica on this host`, { vm });
    }
    return view;
  }

  const sizesOf = (view: VmView): number[] => view.config.disks.map((x) => x.sizeBytes);

  async function digestsAt(view: VmView, point: RecoveryPointRecord): Promise<string[]> {
    const store = await d.replication.store(view.config.name);
    const out: string[] = [];
    for (const [i, size] of sizesOf(view).entries()) {
      out.push(await pointDigest(store, i, size, point.id));
    }
    return out;
  }

  // ---- test failover ----

  async function openTest(vm: string, point: RecoveryPointRecord, nics: readonly VmNic[]) {
    const view = existing(vm);
    const store = await d.replication.store(vm);
    await store.pin('test', point.id);
    const tv = await openTestView({
      store,
      pointId: point.id,
      diskSizes: sizesOf(view),
      overlayDir: testOverlayDir(vmDir(vm)),
      resume: true,
    });
    try {
      mkdirSync(layout.runDir(d.dataDir), { recursive: true, mode: 0o700 });
      const exports = await serveTestView(tv, {
        exportName: (i) => layout.exportName(testName(vm), i),
        socketPath: (i) => checkSocketPath(layout.exportSocket(d.dataDir, testName(vm), i)),
        log,
      });
      tests.set(vm, { view: tv, exports, point, nics });
    } catch (e) {
      await tv.close({ keepOverlay: true });
      throw e;
    }
    log.info({ vm, point: point.id, testVm: testName(vm) }, 'test failover VM running');
  }

  async function closeTest(vm: string, keepOverlay: boolean): Promise<void> {
    const t = tests.get(vm);
    if (!t) return;
    tests.delete(vm);
    for (const e of t.exports) await e.close();
    await t.view.close({ keepOverlay });
  }

  const testOutcome = (vm: string, st: FailoverState): FailoverOutcome | undefined =>
    st.test && {
      point: st.test.point,
      digests: [],
      unshippedBytes: 0,
      testVm: testName(vm),
    };

  // ---- failover view ----

  async function openFailoverView(vm: string, point: RecoveryPointRecord): Promise<ExternalDisks> {
    const view = existing(vm);
    const store = await d.replication.store(vm);
    await store.pin('failover', point.id);
    const fv = await openTestView({
      store,
      pointId: point.id,
      diskSizes: sizesOf(view),
      overlayDir: failoverOverlayDir(vmDir(vm)),
      resume: true,
    });
    views.set(vm, fv);
    return {
      disks: fv.disks,
      close: async () => {
        if (views.get(vm) === fv) views.delete(vm);
        await fv.close({ keepOverlay: true });
      },
    };
  }

  const failoverOutcome = (st: FailoverState): FailoverOutcome | undefined =>
    st.failover && {
      point: st.failover.point,
      digests: st.failover.digests ?? [],
      unshippedBytes: 0,
      testVm: '',
    };

  /** Pins the point `spec` names once no apply is in flight (intake is stopped by then). */
  async function pinChosen(store: ReplicaStore, spec: string): Promise<RecoveryPointRecord> {
    for (;;) {
      const point = choosePoint(store.points(), spec);
      await store.pin('failover', point.id); // queued after an apply in flight
      if (choosePoint(store.points(), spec).id === point.id) return point;
    }
  }

  async function withDigests(vm: string, asked: boolean): Promise<FailoverOutcome> {
    const st = read(vm);
    const f = st.failover!;
    if (asked && !f.digests && f.state === 'failed-over') {
      const digests = await digestsAt(existing(vm), f.point);
      write(vm, { ...st, failover: { ...f, digests } });
    }
    return failoverOutcome(read(vm))!;
  }

  /** Writes the view's changes through the journal (commit, with the guest's requests held). */
  async function fill(vm: string, journal: RuntimeJournal): Promise<void> {
    const fv = views.get(vm);
    if (!fv) throw new SecondsiteError('SS_INTERNAL', `VM ${vm} has no failover view open`);
    let bytes = 0;
    for (const [i, disk] of fv.disks.entries()) {
      const target = journal.disk(i);
      for (const run of disk.changedRuns()) {
        const start = run.first * OVERLAY_BLOCK;
        const end = Math.min((run.last + 1) * OVERLAY_BLOCK, disk.size);
        if (run.state === 'zero') {
          await target.writeZeroes(start, end - start, false);
          continue;
        }
        for (let at = start; at < end; at += COPY_PIECE) {
          const len = Math.min(COPY_PIECE, end - at);
          await target.write(at, disk.readOverlay(at, len), false);
          bytes += len;
        }
      }
      await target.flush();
    }
    log.info({ vm, bytes }, 'failover commit: the VM writes since failover are journaled');
  }

  async function commitSteps(vm: string): Promise<void> {
    let st = read(vm);
    const f = st.failover!;
    write(vm, (st = { ...st, failover: { ...f, state: 'committing' } }));
    const paired = find(vm)?.pairing?.role === 'replica';
    if (paired && !f.materialized) {
      const store = await d.replication.store(vm);
      const dropped = store.points().filter((p) => p.id !== f.point.id).length;
      await store.commit(f.point.id);
      log.info({ vm, point: f.point.id, dropped }, 'failover commit: other points discarded');
    }
    if (!f.materialized) {
      await d.vms.startVm(vm); // on its view (start hook); nothing when it runs
      await d.vms.materialize(vm, COMMIT_PROTECTION, (j) => fill(vm, j));
      write(vm, (st = { ...st, failover: { ...f, state: 'committing', materialized: true } }));
    }
    rmSync(failoverOverlayDir(vmDir(vm)), { recursive: true, force: true });
    if (find(vm)?.pairing?.role === 'replica') await d.pairing.unpair(vm, false);
    write(vm, { ...st, failover: { ...f, state: 'committed', materialized: true } });
    log.info({ vm, point: f.point.id, epoch: f.epoch }, 'failover committed');
  }

  // ---- primary side ----

  /** Journal bytes on disk: sealed and active segments, none of them acknowledged. */
  function journalBytes(vm: string): number {
    try {
      return listSegments(layout.journalDir(d.dataDir, vm)).reduce(
        (n, s) => n + statSync(s.path).size,
        0,
      );
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
  }

  async function waitAcked(vm: string, seq: number): Promise<void> {
    const deadline = d.clock.now() + (d.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS);
    for (;;) {
      const s = await d.replication.status(existing(vm));
      if ((s?.lastAckedSeq ?? 0) >= seq) return;
      if (s?.state === 'stopped' || s?.state === 'incompatible') {
        throw new SecondsiteError(
          'SS_UNAVAILABLE',
          `the final point of ${vm} cannot be shipped: ${s.lastError || s.state}`,
          { vm, seq },
        );
      }
      if (d.clock.now() > deadline) {
        throw new SecondsiteError(
          'SS_TIMEOUT',
          `the peer did not acknowledge the final point of ${vm} (segment ${seq}) in time; the VM stays stopped, send prepare_failover again`,
          { vm, seq },
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const prepareOutcome = (st: FailoverState): FailoverOutcome | undefined =>
    st.prepared?.state === 'prepared'
      ? {
          point: st.prepared.point,
          digests: st.prepared.digests ?? [],
          unshippedBytes: 0,
          testVm: '',
        }
      : undefined;

  const fenceOutcome = (st: FailoverState): FailoverOutcome | undefined =>
    st.fence && { digests: [], unshippedBytes: st.fence.unshippedBytes, testVm: '' };

  // ---- the operations ----

  const ops: FailoverOps = {
    testFailover: (name, spec, nics) =>
      serial(name, async () => {
        const view = replica(name);
        const st = read(name);
        if (st.test) {
          throw conflict(`a test failover of ${name} runs already (${testName(name)})`, {
            vm: name,
            testVm: testName(name),
          });
        }
        if (st.failover) throw conflict(`VM ${name} is failed over`, { vm: name });
        if (find(testName(name))) {
          throw conflict(`a VM named ${testName(name)} exists on this host`, { vm: name });
        }
        const store = await d.replication.store(name);
        const point = choosePoint(store.points(), spec);
        await store.pin('test', point.id);
        rmSync(testOverlayDir(vmDir(name)), { recursive: true, force: true });
        write(name, { ...st, test: { point, nics: [...nics], since: d.clock.now() } });
        await openTest(view.config.name, point, nics);
        return testOutcome(name, read(name))!;
      }),

    cleanupTest: (name) =>
      serial(name, async () => {
        const st = read(name);
        const before = testOutcome(name, st);
        await closeTest(name, false);
        rmSync(testOverlayDir(vmDir(name)), { recursive: true, force: true });
        if (find(name)?.pairing?.role === 'replica') {
          (await d.replication.store(name).catch(() => undefined))?.unpin('test');
        }
        if (st.test) {
          write(name, { ...st, test: undefined });
          log.info({ vm: name, testVm: testName(name) }, 'test failover cleaned up');
        }
        return before ?? { digests: [], unshippedBytes: 0, testVm: testName(name) };
      }),

    prepare: (name) =>
      serial(name, async () => {
        const view = existing(name);
        let st = read(name);
        const done = prepareOutcome(st);
        if (done) return done;
        const pairing = view.pairing;
        if (pairing?.role !== 'primary') {
          throw new SecondsiteError('SS_NOT_PAIRED', `VM ${name} is not a primary here`, {
            vm: name,
          });
        }
        if (st.fence) throw conflict(`VM ${name} is fenced`, { vm: name });
        if (pairing.paused) {
          throw conflict(`replication of ${name} is paused: resume it before a planned failover`, {
            vm: name,
          });
        }
        if (pairing.baseline !== 'zero' && pairing.baseline !== 'copied') {
          throw new SecondsiteError(
            'SS_RESYNC_REQUIRED',
            `the replica of ${name} is not complete yet (${pairing.baseline})`,
            { vm: name },
          );
        }
        write(name, (st = { ...st, prepared: { state: 'preparing' } }));
        await d.vms.detachGuest(name);
        if (d.vms.journalOf(name)?.state !== 'journaling') {
          throw new SecondsiteError(
            'SS_RESYNC_REQUIRED',
            `the journal of ${name} is not journaling: resync before a planned failover`,
            { vm: name },
          );
        }
        const point = await d.vms.cut(name, 'crash-consistent');
        log.info({ vm: name, point }, 'planned failover: final point cut');
        await waitAcked(name, point.segment);
        await d.vms.stopVm(name);
        const digests: string[] = [];
        for (const disk of view.config.disks) {
          digests.push(await fileDigest(diskPath(vmDir(name), disk)));
        }
        write(name, { ...st, prepared: { state: 'prepared', point, digests } });
        log.info({ vm: name, point: point.id }, 'planned failover: primary prepared');
        return prepareOutcome(read(name))!;
      }),

    failover: (req) =>
      serial(req.name, async () => {
        const name = req.name;
        const view = existing(name);
        const st = read(name);
        if (st.failover) {
          if (req.epoch < st.failover.epoch) {
            throw conflict(`VM ${name} failed over under epoch ${st.failover.epoch} already`, {
              vm: name,
            });
          }
          if (st.failover.state === 'failed-over') {
            const store = await d.replication.store(name);
            if (choosePoint(store.points(), req.point).id !== st.failover.point.id) {
              throw conflict(
                `VM ${name} is failed over at point ${st.failover.point.id}: change_point moves it`,
                { vm: name, point: st.failover.point.id },
              );
            }
          }
          return withDigests(name, req.digests);
        }
        const pairing = replica(name).pairing!;
        if (req.epoch < pairing.epoch) {
          throw conflict(`a failover must raise the epoch (now ${pairing.epoch})`, {
            vm: name,
            epoch: req.epoch,
          });
        }
        if (st.test) {
          throw conflict(`clean up the test failover of ${name} first`, {
            vm: name,
            testVm: testName(name),
          });
        }
        // Intake stops here: the receiver serves only streams of the pairing's epoch.
        if (pairing.epoch !== req.epoch) await d.vms.updatePairing(name, { epoch: req.epoch });
        const store = await d.replication.store(name);
        const point = await pinChosen(store, req.point);
        rmSync(failoverOverlayDir(vmDir(name)), { recursive: true, force: true });
        write(name, { ...st, failover: { state: 'failed-over', epoch: req.epoch, point } });
        await d.vms.setNics(name, req.nics);
        await d.vms.startVm(view.config.name);
        log.info({ vm: name, point: point.id, epoch: req.epoch }, 'failed over');
        return withDigests(name, req.digests);
      }),

    changePoint: (req) =>
      serial(req.name, async () => {
        const name = req.name;
        existing(name);
        const st = read(name);
        const f = st.failover;
        if (!f) throw conflict(`VM ${name} is not failed over on this host`, { vm: name });
        if (f.state !== 'failed-over') {
          throw conflict(`the failover of ${name} is committed: no other point is kept`, {
            vm: name,
          });
        }
        if (req.epoch < f.epoch) {
          throw conflict(`VM ${name} failed over under epoch ${f.epoch}`, { vm: name });
        }
        const store = await d.replication.store(name);
        const point = choosePoint(store.points(), req.point);
        if (point.id !== f.point.id) {
          await d.vms.stopVm(name);
          rmSync(failoverOverlayDir(vmDir(name)), { recursive: true, force: true });
          await store.pin('failover', point.id);
          write(name, { ...st, failover: { state: 'failed-over', epoch: req.epoch, point } });
          if (req.nics.length > 0) await d.vms.setNics(name, req.nics);
          await d.vms.startVm(name);
          log.info({ vm: name, from: f.point.id, to: point.id }, 'failover point changed');
        }
        return withDigests(name, req.digests);
      }),

    commit: (name) =>
      serial(name, async () => {
        existing(name);
        const st = read(name);
        if (!st.failover)
          throw conflict(`VM ${name} is not failed over on this host`, { vm: name });
        if (st.failover.state !== 'committed') await commitSteps(name);
        return failoverOutcome(read(name))!;
      }),

    fence: (name, epoch) =>
      serial(name, async () => {
        const view = existing(name);
        const p = view.pairing;
        let st = read(name);
        if (p && p.epoch >= epoch) {
          if (p.role === 'primary' && !st.fence) {
            throw conflict(`VM ${name} is the primary under epoch ${p.epoch}: nothing to fence`, {
              vm: name,
              epoch,
            });
          }
          if (p.role === 'replica') return { digests: [], unshippedBytes: 0, testVm: '' };
        }
        if (st.fence && st.fence.epoch >= epoch) return fenceOutcome(st)!;
        // Recorded first: from here on the start hook refuses it, also after a restart.
        const unshippedBefore = st.fence?.unshippedBytes ?? 0;
        write(
          name,
          (st = { ...st, fence: { epoch, unshippedBytes: unshippedBefore, at: d.clock.now() } }),
        );
        if (p?.role === 'primary' && !p.paused) {
          await d.vms.updatePairing(name, { paused: true });
          await d.replication.refresh(); // the sender has stopped
        }
        await d.vms.stopVm(name);
        const unshippedBytes = journalBytes(name);
        write(name, { ...st, fence: { epoch, unshippedBytes, at: st.fence!.at } });
        log.warn(
          { vm: name, epoch, unshippedBytes },
          'fenced: the old epoch neither runs nor ships',
        );
        return fenceOutcome(read(name))!;
      }),

    reverse: (req, baseline) =>
      serial(req.name, async () => {
        const name = req.name;
        const view = find(name);
        const st = view ? read(name) : { schemaVersion: 1 as const };
        const p = view?.pairing;
        const same =
          p?.role === req.role && p.peerHost === req.peerHost && p.epoch === (req.epoch ?? 1);
        let discardedBytes = 0;
        if (!same && req.role === 'primary' && st.failover && st.failover.state !== 'committed') {
          throw conflict(`commit the failover of ${name} before reversing its replication`, {
            vm: name,
          });
        }
        if (!same && req.role === 'replica' && p?.role === 'primary' && (st.prepared || st.fence)) {
          if (baseline === 'in-sync' && st.prepared?.state !== 'prepared') {
            throw conflict(
              `VM ${name} was not prepared by a planned failover: its disks may hold writes the new primary lacks; reverse with baseline resync`,
              { vm: name },
            );
          }
          if (view?.runtime)
            throw conflict(`VM ${name} runs: it cannot become a replica`, { vm: name });
          discardedBytes = st.fence?.unshippedBytes ?? journalBytes(name);
          await d.pairing.unpair(name, false); // pause, unprotect (journal gone), unpair
          await d.pairing.unpair(name, false); // no role now: drops any stale replica store
          log.warn(
            { vm: name, discardedBytes, baseline },
            'reverse: the former primary becomes the replica; its unshipped journal is discarded',
          );
        }
        const after = await d.pairing.pair(req);
        const left = read(name);
        const keep = req.role === 'primary' ? { test: left.test } : {};
        if (left.failover || left.prepared || left.fence)
          write(name, { schemaVersion: 1, ...keep });
        return { view: after, discardedBytes };
      }),

    outcome(kind, name) {
      if (!find(name)) return undefined;
      const st = read(name);
      switch (kind) {
        case 'testFailover':
        case 'cleanupTest':
          return testOutcome(name, st);
        case 'prepareFailover':
          return prepareOutcome(st);
        case 'fence':
          return fenceOutcome(st);
        default:
          return failoverOutcome(st);
      }
    },

    startHook(vm) {
      let st: FailoverState;
      try {
        st = read(vm);
      } catch (e) {
        return { refuse: `the failover state of ${vm} is unreadable: ${(e as Error).message}` };
      }
      if (st.fence) {
        return {
          refuse: `VM ${vm} is fenced: epoch ${st.fence.epoch} runs on another host (reverse replication makes it a replica)`,
        };
      }
      if (st.prepared) {
        return {
          refuse: `VM ${vm} is ${st.prepared.state} for a planned failover; it starts again only as the new primary's replica, or after unpairing`,
        };
      }
      const f = st.failover;
      if (f && !f.materialized && f.state !== 'committed') {
        return { external: () => openFailoverView(vm, f.point) };
      }
      return undefined;
    },

    testVms() {
      return [...tests.entries()].map(([vm, t]) => ({
        name: testName(vm),
        of: vm,
        point: t.point,
        nics: t.nics,
        disks: t.view.disks.map((disk, i) => ({ sizeBytes: disk.size, nbd: t.exports[i]!.uri })),
      }));
    },

    status(view) {
      const vm = view.config.name;
      let st: FailoverState = { schemaVersion: 1 };
      try {
        st = read(vm);
      } catch {
        // reported as no failover state; the start hook refuses it with the reason
      }
      const base = view.pairing?.role ?? 'none';
      const f = st.failover;
      if (f) {
        return { role: 'primary', state: f.state, pointId: f.point.id, epoch: f.epoch, testVm: '' };
      }
      if (st.fence) {
        return { role: 'none', state: 'fenced', pointId: '', epoch: st.fence.epoch, testVm: '' };
      }
      if (st.prepared) {
        return {
          role: st.prepared.state === 'prepared' ? 'none' : base,
          state: st.prepared.state,
          pointId: st.prepared.point?.id ?? '',
          epoch: 0,
          testVm: '',
        };
      }
      if (st.test) {
        return {
          role: base,
          state: 'testing',
          pointId: st.test.point.id,
          epoch: 0,
          testVm: testName(vm),
        };
      }
      return { role: base, state: '', pointId: '', epoch: 0, testVm: '' };
    },

    /** Brings back what a restart interrupted: test copies, and commits half done. */
    async run(signal) {
      for (const view of d.vms.list()) {
        const vm = view.config.name;
        await serial(vm, async () => {
          const st = read(vm);
          if (st.test && view.pairing?.role === 'replica' && !tests.has(vm)) {
            await openTest(vm, st.test.point, st.test.nics);
          }
          if (st.failover?.state === 'committing') await commitSteps(vm);
        }).catch((e: unknown) => log.error({ err: e, vm }, 'failover state not restored'));
      }
      if (signal.aborted) return;
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    },

    async shutdown() {
      for (const vm of [...tests.keys()]) await closeTest(vm, true);
    },
  };
  return ops;
}
