/**
 * What an administrator does once both sites are registered, through the coordinator's API
 * (the same client the CLI commands use): a policy, its association of New York's gold cloud
 * with Chicago's, a network map and a storage map, then `replication enable`, followed step
 * by step in plain words.
 */
import {
  FINISHED_JOB_STATES,
  type ApiClient,
  type JobView,
} from '../../common/api-client/index.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { CHICAGO, NEW_YORK, POLICY, VAULT, VMS } from './layout.ts';
import { poll } from './processes.ts';

/** The policy's copy frequency; the coordinator's time scale shortens it for the demo. */
export const COPY_FREQUENCY = '30s';

const stdout = (text: string): boolean => process.stdout.write(text);

/** `say`: where the progress lines go (stdout for the demo). */
export async function createPolicyAndMaps(
  api: ApiClient,
  timeScale: number,
  say: (text: string) => void = stdout,
): Promise<void> {
  const cycle = 30 * timeScale;
  const policy = await api.createPolicy(VAULT, { name: POLICY, copyFrequency: COPY_FREQUENCY });
  say(
    `- policy "${policy.name}": a recovery point every ${policy.copyFrequency}` +
      (timeScale === 1
        ? ''
        : ` (every ${cycle.toFixed(cycle < 10 ? 1 : 0)} s at this time scale)`) +
      `, points kept ${policy.retentionHours} h, initial copy over the ${policy.initial.method}\n`,
  );
  const source = `${NEW_YORK.server}/${NEW_YORK.cloud}`;
  const target = `${CHICAGO.server}/${CHICAGO.cloud}`;
  await api.associatePolicy(VAULT, POLICY, { sourceCloud: source, targetCloud: target });
  say(`- associated ${source} (primary) with ${target} (secondary) under "${POLICY}"\n`);
  const net = {
    source: `${NEW_YORK.server}/${NEW_YORK.vmNetwork}`,
    target: `${CHICAGO.server}/${CHICAGO.vmNetwork}`,
  };
  await api.createMap(VAULT, 'network', net);
  say(`- network map: ${net.source} → ${net.target} (replicas connect there)\n`);
  const storage = { source: `${NEW_YORK.server}/GOLD`, target: `${CHICAGO.server}/GOLD` };
  await api.createMap(VAULT, 'storage', storage);
  say(`- storage map: ${storage.source} → ${storage.target} (replica disks go there)\n`);
}

/** "pair-replica:VM1" in the administrator's words. */
export function stepWords(step: string): string {
  const [phase = '', vm = ''] = step.split(':');
  const words: Record<string, string> = {
    place: `${vm}: choosing the target host, storage and networks of its replica`,
    'pair-replica': `${vm}: creating the replica VM on ${CHICAGO.host}`,
    'pair-primary': `${vm}: pairing it with its replica and starting the initial copy`,
  };
  return words[phase] ?? step;
}

export interface EnableOptions {
  /** The VMs of New York's gold cloud to enable (the demo's VM1 and VM2 unless given). */
  readonly vms?: readonly string[];
  /** Where the progress lines go (stdout for the demo). */
  readonly say?: (text: string) => void;
  /** How long the job may take. @default 120 s */
  readonly timeoutMs?: number;
}

/** Starts `replication enable` for VM1 and VM2 (or `o.vms`) and follows the job to its end. */
export async function enableReplication(
  api: ApiClient,
  signal: AbortSignal,
  logs: string,
  o: EnableOptions = {},
): Promise<JobView> {
  const say = o.say ?? stdout;
  const vms = o.vms ?? VMS;
  const cloud = `${NEW_YORK.server}/${NEW_YORK.cloud}`;
  const started = await api.enableReplication(VAULT, cloud, vms);
  say(`- replication enable ${vms.join(' ')} (job ${started.id})\n`);
  const printed = new Set<string>();
  const job = await poll(
    `job ${started.id} (replication enable)`,
    async () => {
      const j = await api.getJob(started.id);
      // A step may start and end between two polls: each is announced once it has begun.
      for (const s of j.steps) {
        if (s.state === 'pending' || printed.has(s.name)) continue;
        printed.add(s.name);
        say(`    ${stepWords(s.name)}\n`);
      }
      return FINISHED_JOB_STATES.includes(j.state) ? j : undefined;
    },
    { signal, timeoutMs: o.timeoutMs ?? 120_000, everyMs: 300 },
  );
  if (job.state !== 'succeeded') {
    const failed = job.steps.find((s) => s.state === 'failed');
    const error = new SecondsiteError(
      job.error?.code ?? 'SS_INTERNAL',
      `replication enable ${job.state}` +
        (failed === undefined ? '' : ` at "${failed.name}"`) +
        (job.error === null ? '' : `: ${job.error.message} [${job.error.code}]`) +
        `; read the logs in ${logs} (secondsite job show ${job.id} has the steps)`,
      { job: job.id },
    );
    // The job's own refusal is not the demo's bad input: the demo failed (exit 1), not its flags.
    if (error.kind === 'bad-input') {
      throw new SecondsiteError('SS_INTERNAL', error.message, { job: job.id });
    }
    throw error;
  }
  say(
    `    done: ${vms.length === 2 ? 'both VMs are' : vms.length === 1 ? 'the VM is' : `${vms.length} VMs are`} paired; the initial copy runs host to host\n`,
  );
  return job;
}
