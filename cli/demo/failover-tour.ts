/**
 * The demo's last act (issue 6): what an administrator does on the day, on VM1, each step a job
 * the coordinator runs and the demo follows:
 *   test failover (VM1-test at Chicago from the latest point; replication goes on) → cleanup,
 *   planned failover to Chicago → commit → reverse (Chicago is the primary now),
 *   failback: planned failover to New York → commit → reverse.
 * Runs after the workload stopped (a planned failover stops the primary VM); `--no-failover`
 * skips it.
 */
import type {
  ApiClient,
  FailoverBody,
  FailoverOperation,
  JobView,
} from '../../common/api-client/index.ts';
import { FINISHED_JOB_STATES } from '../../common/api-client/index.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { VAULT } from './layout.ts';

const POLL_MS = 300;

const say = (text: string): boolean => process.stdout.write(text);

async function runJob(
  api: ApiClient,
  op: FailoverOperation,
  body: FailoverBody,
  signal: AbortSignal,
): Promise<JobView> {
  let job = await api.failover(VAULT, op, body);
  while (!FINISHED_JOB_STATES.includes(job.state)) {
    if (signal.aborted) throw new SecondsiteError('SS_CANCELLED', 'stopped');
    await new Promise((r) => setTimeout(r, POLL_MS));
    job = await api.getJob(job.id);
  }
  if (job.state !== 'succeeded') {
    throw new SecondsiteError(
      'SS_INTERNAL',
      `${job.type} of ${body.vm ?? body.plan ?? '?'} ${job.state}: ${job.error?.message ?? ''} ` +
        `(secondsite job show ${job.id})`,
      { job: job.id },
    );
  }
  return job;
}

const seconds = (job: JobView): string => {
  const took = Date.parse(job.endedAt ?? job.updatedAt) - Date.parse(job.createdAt);
  return `${(took / 1000).toFixed(1)} s`;
};

export async function failoverTour(api: ApiClient, vm: string, signal: AbortSignal): Promise<void> {
  say(`\nFailover: the day it is needed, on ${vm}\n`);
  const step = async (what: string, op: FailoverOperation, extra: FailoverBody = {}) => {
    say(`  ${what} … `);
    const job = await runJob(api, op, { vm, ...extra }, signal);
    const item = await api.getItem(VAULT, vm);
    say(
      `done in ${seconds(job)} (job ${job.id}); ${vm} is ${item.state}, ` +
        `running at ${item.state === 'protected' ? item.sourceServer : item.targetServer}\n`,
    );
  };
  await step(
    'test failover from the latest point (VM1-test at Chicago, production untouched)',
    'test',
  );
  const test = await api.getVm(VAULT, `VMM-Chicago/${vm}-test`);
  say(`    ${vm}-test runs with role ${test.role}: ${test.disks[0]?.nbd ?? '(no export)'}\n`);
  await step('clean up the test', 'cleanup-test', { notes: 'demo: the test VM started' });
  await step(
    'planned failover to Chicago (stop, ship the last changes, compare, start)',
    'planned',
  );
  await step('commit', 'commit');
  await step('reverse replication (Chicago → New York, nothing to compare)', 'reverse');
  await step('fail back: planned failover to New York', 'planned');
  await step('commit', 'commit');
  await step('reverse replication (New York → Chicago again)', 'reverse');
}
