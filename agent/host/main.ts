/**
 * The host agent process (STYLE.md rule 1: this file only wires). `startHost` compiles the
 * flags, locks the data folder, starts the VM manager (which brings back the VMs that were
 * running) and the local control API, and runs until SIGTERM or SIGINT; then it closes the
 * control API, stops every VM (exports closed, journals flushed) and releases the lock.
 *
 * The admin functions below are what `secondsite host vm ...` calls (the CLI may import only
 * this file of the host agent).
 */
import { mkdirSync } from 'node:fs';
import { abortOnSignals } from '../../common/lifecycle/lifecycle.ts';
import { lockDataFolder } from '../../common/lifecycle/data-lock.ts';
import { createLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { compileHostConfig, refuseEnrolled, type HostStartFlags } from './config.ts';
import { createControlServer } from './control/control-server.ts';
import { createVmManager } from './vm/vm-manager.ts';

export type { HostStartFlags } from './config.ts';
export type { PointJson, VmJson } from './control/control-client.ts';
export {
  vmAction,
  vmCreate,
  vmCut,
  vmList,
  vmPoints,
  vmProtect,
  type VmAction,
  type VmCreateFlags,
  type VmProtectFlags,
} from './control/admin.ts';

export async function startHost(flags: HostStartFlags): Promise<void> {
  const config = compileHostConfig(flags);
  refuseEnrolled(config);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataFolder(config.dataDir);
  const log = createLogger({ name: 'secondsite-host' }).child({
    component: 'host-agent',
    host: config.name,
  });
  const stop = abortOnSignals();
  try {
    const vms = createVmManager({
      dataDir: config.dataDir,
      clock: systemClock,
      log,
      freezeTimeoutMs: config.freezeTimeoutMs,
      copyFrequencyOverrideMs: config.devCopyFrequencyMs,
      journalCapBytes: config.journalCapBytes,
    });
    const control = createControlServer({ dataDir: config.dataDir, vms, log });
    log.info({ data: config.dataDir, standalone: config.standalone }, 'host agent starting');
    const running = [vms.run(stop.signal), control.run(stop.signal)].map((p) =>
      p.catch((e: unknown) => {
        log.error({ err: e }, 'host agent part failed; stopping');
        stop.abort();
        throw e;
      }),
    );
    const outcome = await Promise.allSettled(running);
    await control.shutdown();
    await vms.shutdown();
    log.info('host agent stopped');
    const failed = outcome.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    lock.release();
  }
}
