/**
 * The parts of a host agent wired together, without the process around them (signals, the
 * data-folder lock): main.ts runs one per process, integration tests run several in one
 * process. Parts: the VM manager, the local control API, replication (receiver behind the
 * replication port, senders for primary VMs).
 */
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import type { HostConfig } from './config.ts';
import { createControlServer } from './control/control-server.ts';
import { createHostReplication, type HostReplication } from './replication/replication-host.ts';
import { createVmManager, type VmManager } from './vm/vm-manager.ts';

export interface HostAgent {
  readonly vms: VmManager;
  readonly replication: HostReplication;
  /** Runs every part until the signal aborts; a failing part aborts the others. */
  run(signal: AbortSignal): Promise<void>;
  shutdown(): Promise<void>;
}

export function createHostAgent(config: HostConfig, clock: Clock, log: Logger): HostAgent {
  const vms = createVmManager({
    dataDir: config.dataDir,
    clock,
    log,
    freezeTimeoutMs: config.freezeTimeoutMs,
    copyFrequencyOverrideMs: config.devCopyFrequencyMs,
    journalCapBytes: config.journalCapBytes,
    // Called only for cuts, which come after construction (replication is set by then).
    onSealed: (vm) => replication.wake(vm),
  });
  const replication: HostReplication = createHostReplication({
    dataDir: config.dataDir,
    vms,
    tlsDir: config.tlsDir,
    address: config.address,
    port: config.certPort,
    clock,
    log,
  });
  const control = createControlServer({ dataDir: config.dataDir, vms, log, replication });
  const parts = [vms, control, replication];
  return {
    vms,
    replication,
    async run(signal) {
      const inner = new AbortController();
      signal.addEventListener('abort', () => inner.abort(), { once: true });
      const running = parts.map((p) =>
        p.run(inner.signal).catch((e: unknown) => {
          log.error({ err: e }, 'host agent part failed; stopping');
          inner.abort();
          throw e;
        }),
      );
      const outcome = await Promise.allSettled(running);
      const failed = outcome.find((o) => o.status === 'rejected');
      if (failed) throw failed.reason;
    },
    async shutdown() {
      await control.shutdown();
      await replication.shutdown();
      await vms.shutdown();
    },
  };
}
