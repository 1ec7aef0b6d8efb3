/** `secondsite job list | show | wait | resume | cancel` (R29). */
import type { Command } from 'commander';
import { FINISHED_JOB_STATES, type JobView } from '../../common/api-client/index.ts';
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';

/** How often `job wait` asks; jobs take seconds to hours, so twice a second is plenty. */
const WAIT_POLL_MS = 500;

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** "90s", "5m", "2h", "500ms"; a bare number is seconds. */
export function parseTimeout(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  const unit = DURATION_UNITS[m?.[2] ?? 's'];
  if (m?.[1] === undefined || unit === undefined) {
    throw badInput('timeout', `"${text}" is not a duration (examples: 30s, 5m, 2h)`);
  }
  return Number(m[1]) * unit;
}

function currentStep(job: JobView): string {
  const step = job.steps.find((s) => s.state !== 'succeeded') ?? job.steps.at(-1);
  return step === undefined ? '-' : step.name;
}

function jobsTable(jobs: readonly JobView[]): string {
  if (jobs.length === 0) return 'no jobs\n';
  return table(
    ['ID', 'TYPE', 'STATE', 'STEP', 'CREATED'],
    jobs.map((j) => [j.id, j.type, j.state, currentStep(j), j.createdAt]),
  );
}

function jobDetail(job: JobView): string {
  const head = `job ${job.id} (${job.type}) in vault ${job.vault}: ${job.state}\n`;
  const steps = table(
    ['STEP', 'STATE', 'STARTED', 'ENDED', 'PROGRESS'],
    job.steps.map((s) => [
      s.name,
      s.state,
      s.startedAt ?? '-',
      s.endedAt ?? '-',
      s.progress === undefined ? '-' : `${Math.round(s.progress * 100)}%`,
    ]),
  );
  const error = job.error === null ? '' : `error: ${job.error.message} [${job.error.code}]\n`;
  const waiting = job.steps.find((s) => s.state === 'waiting');
  const hint =
    waiting === undefined
      ? ''
      : `waiting for: ${waiting.instruction ?? waiting.name}; confirm with: secondsite job resume ${job.id}\n`;
  return `${head}${steps}${error}${hint}`;
}

/** Prints the job; a failed or cancelled job makes the command exit 1. */
export function report(job: JobView, flags: AdminFlags): void {
  if (flags.json) printJson(job);
  else process.stdout.write(jobDetail(job));
  if (job.state === 'failed' || job.state === 'cancelled') {
    if (flags.json) process.stderr.write(`job ${job.id} ${job.state}\n`);
    process.exitCode = 1;
  }
}

/** Human mode: one line per step change while waiting (JSON mode prints only the result). */
function stepChanges(): (job: JobView) => void {
  const seen = new Map<string, string>();
  return (job) => {
    for (const s of job.steps) {
      const pct =
        s.state === 'running' && s.progress !== undefined
          ? ` ${Math.round(s.progress * 100)}%`
          : '';
      const shown = `${s.state}${pct}`;
      if (s.state !== 'pending' && seen.get(s.name) !== shown) {
        seen.set(s.name, shown);
        process.stdout.write(`  ${s.name}: ${shown}\n`);
      }
    }
  };
}

/** Follows a job until it finishes or waits (human mode prints each step change). */
export async function waitForJob(
  id: string,
  flags: AdminFlags & { timeout?: string },
): Promise<JobView> {
  const deadline =
    flags.timeout === undefined ? Infinity : Date.now() + parseTimeout(flags.timeout);
  const show = flags.json ? () => undefined : stepChanges();
  return withApiClient(flags.config, async (api) => {
    for (;;) {
      const job = await api.getJob(id);
      show(job);
      if (FINISHED_JOB_STATES.includes(job.state) || job.state === 'waiting') return job;
      if (Date.now() >= deadline) {
        throw new SecondsiteError('SS_TIMEOUT', `job ${id} is still ${job.state}`, {
          job: id,
          state: job.state,
          step: currentStep(job),
        });
      }
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
  });
}

export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('long-running actions and their steps');

  withAdminFlags(job.command('list'))
    .description('list the jobs of a vault, newest first')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (flags: AdminFlags & { vault: string }) => {
      const jobs = await withApiClient(flags.config, (api) => api.listJobs(flags.vault));
      if (flags.json) printJson(jobs);
      else process.stdout.write(jobsTable(jobs));
    });

  withAdminFlags(job.command('show').argument('<id>', 'job id'))
    .description('show a job and its steps')
    .action(async (id: string, flags: AdminFlags) => {
      const found = await withApiClient(flags.config, (api) => api.getJob(id));
      if (flags.json) printJson(found);
      else process.stdout.write(jobDetail(found));
    });

  withAdminFlags(job.command('wait').argument('<id>', 'job id'))
    .description('wait until the job finishes or waits for a manual action')
    .option('--timeout <duration>', 'give up after this long (e.g. 30s, 5m)')
    .action(async (id: string, flags: AdminFlags & { timeout?: string }) => {
      if (flags.timeout !== undefined) parseTimeout(flags.timeout); // refuse bad input first
      report(await waitForJob(id, flags), flags);
    });

  withAdminFlags(job.command('resume').argument('<id>', 'job id'))
    .description('confirm the manual action a waiting job waits for')
    .action(async (id: string, flags: AdminFlags) => {
      const resumed = await withApiClient(flags.config, (api) => api.resumeJob(id));
      if (flags.json) printJson(resumed);
      else process.stdout.write(`resumed job ${resumed.id}: ${resumed.state}\n`);
    });

  withAdminFlags(job.command('cancel').argument('<id>', 'job id'))
    .description('cancel a running or waiting job')
    .action(async (id: string, flags: AdminFlags) => {
      const cancelled = await withApiClient(flags.config, (api) => api.cancelJob(id));
      if (flags.json) printJson(cancelled);
      else process.stdout.write(`job ${cancelled.id}: ${cancelled.state}\n`);
    });
}
