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
import { NODE_FLAGS, NODE_FLAGS_WARNING, hasNodeFlags } from './node-flags.ts';
import { abortOnSignals } from '../../common/lifecycle/lifecycle.ts';
import { lockDataFolder } from '../../common/lifecycle/data-lock.ts';
import { createLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { compileHostConfig, type HostStartFlags } from './config.ts';
import { ensureEnrolled } from './enrolment/enrol.ts';
import { createHostCredentials } from './enrolment/host-credentials.ts';
import { createProviderLink } from './enrolment/provider-link.ts';
import { createHostAgent } from './host-agent.ts';

/** The host agent's software version, told to the provider. */
const HOST_VERSION = '0.1.0';

export { NODE_FLAGS } from './node-flags.ts';
export type { HostStartFlags } from './config.ts';
export type { PointJson, ReplicationJson, VmJson } from './control/control-client.ts';
export {
  vmAction,
  vmCreate,
  vmCut,
  vmList,
  vmPair,
  vmRead,
  vmPoints,
  vmProtect,
  type VmAction,
  type VmCreateFlags,
  type VmPairFlags,
  type VmProtectFlags,
} from './control/admin.ts';

export async function startHost(flags: HostStartFlags): Promise<void> {
  const config = compileHostConfig(flags);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataFolder(config.dataDir);
  const log = createLogger({ name: 'secondsite-host' }).child({
    component: 'host-agent',
    host: config.name,
  });
  const stop = abortOnSignals();
  try {
    // Enrolled before anything else starts: the replication port reads <data>/identity/.
    const identity =
      config.provider === undefined
        ? undefined
        : await ensureEnrolled({
            dataDir: config.dataDir,
            name: config.name,
            provider: config.provider.address,
            tokenFile: config.provider.tokenFile,
            address: config.address,
            now: () => systemClock.now(),
            log,
          });
    const agent = createHostAgent(config, systemClock, log);
    // Renewed at half-life; the link, replication port and senders take it without a restart.
    const creds =
      identity === undefined
        ? undefined
        : createHostCredentials({
            dataDir: config.dataDir,
            tlsDir: config.tlsDir,
            identity,
            replicationTls: agent.replication.tls,
            clock: systemClock,
            log,
          });
    const link =
      identity === undefined
        ? undefined
        : await createProviderLink({
            dataDir: config.dataDir,
            identity,
            vms: agent.vms,
            ops: agent.ops,
            endpoint: () => agent.endpoint(),
            ...(agent.tickets ? { tickets: agent.tickets } : {}),
            version: HOST_VERSION,
            log,
            ...(creds
              ? {
                  tls: creds.tls,
                  trust: { pins: () => creds.pins.fingerprints(), apply: (b) => creds.trust(b) },
                }
              : {}),
          });
    log.info({ data: config.dataDir, standalone: config.standalone }, 'host agent starting');
    if (!hasNodeFlags()) {
      log.warn({ want: NODE_FLAGS, have: process.execArgv }, NODE_FLAGS_WARNING);
    }
    const linkDone = link?.run(stop.signal);
    const renewDone = creds?.renewer.run(stop.signal);
    const outcome = await agent.run(stop.signal).then(
      () => undefined,
      (e: unknown) => ({ e }),
    );
    await link?.shutdown();
    await linkDone;
    await creds?.renewer.shutdown();
    await renewDone;
    creds?.close();
    await agent.shutdown();
    log.info('host agent stopped');
    if (outcome) throw outcome.e;
  } finally {
    lock.release();
  }
}
