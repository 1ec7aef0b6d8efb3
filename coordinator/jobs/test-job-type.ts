/**
 * TEST-ONLY job type `test.steps`, registered only when SECONDSITE_TEST_JOBS=1. Its steps do
 * what the input says (succeed, fail, wait for a file to appear, wait for a manual confirm)
 * and append their names to a trace file, so tests can kill a coordinator mid-job and prove
 * the job resumes at the right step. It reads and writes paths chosen by the API caller,
 * which is why it must never be enabled in a real deployment.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { JobType, StepContext, StepHandler } from './job-types.ts';

export const TEST_JOBS_ENV = 'SECONDSITE_TEST_JOBS';
export const TEST_JOB_TYPE = 'test.steps';

const stepSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9-]{1,40}$/),
    /** ok: succeed; fail: fail; block: wait until `untilFile` exists; manual: wait for resume. */
    action: z.enum(['ok', 'fail', 'block', 'manual']),
    untilFile: z.string().min(1).optional(),
  })
  .strict();

const inputSchema = z
  .object({
    steps: z
      .array(stepSchema)
      .min(1)
      .max(20)
      .refine((steps) => new Set(steps.map((s) => s.name)).size === steps.length, {
        message: 'step names must be unique',
      }),
    /** Each automatic step appends "<name>\n" here when it starts. */
    traceFile: z.string().min(1).optional(),
  })
  .strict();

export type TestJobInput = z.infer<typeof inputSchema>;

/** Polls for the file (the test's go signal) until it appears or the step is aborted. */
async function waitForFile(path: string, signal: AbortSignal): Promise<void> {
  while (!existsSync(path)) {
    signal.throwIfAborted();
    await sleep(50, undefined, { signal }).catch(() => undefined);
  }
}

function handlerFor(name: string): StepHandler<TestJobInput> | undefined {
  return async (ctx: StepContext<TestJobInput>) => {
    const spec = ctx.input.steps.find((s) => s.name === name);
    if (spec === undefined) return undefined;
    if (ctx.input.traceFile !== undefined) appendFileSync(ctx.input.traceFile, `${name}\n`);
    if (spec.action === 'fail') {
      throw new SecondsiteError('SS_INTERNAL', `step ${name} failed on purpose`, { step: name });
    }
    if (spec.action === 'block') {
      if (spec.untilFile === undefined) throw new Error(`step ${name} has no untilFile`);
      await waitForFile(spec.untilFile, ctx.signal);
    }
    return { ran: name };
  };
}

export const testJobType: JobType<TestJobInput> = {
  type: TEST_JOB_TYPE,
  input: inputSchema,
  plan: (input) =>
    input.steps.map((s) =>
      s.action === 'manual'
        ? { name: s.name, kind: 'manual' as const, instruction: `confirm ${s.name}` }
        : { name: s.name },
    ),
  handler: handlerFor,
};

export function testJobsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[TEST_JOBS_ENV] === '1';
}
