import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { JobView } from '../../common/api-client/types.ts';
import type { Job } from '../domain/job.ts';
import { TEST_JOB_TYPE } from '../jobs/test-job-type.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { route } from './route.ts';
import { jobView } from './views.ts';

const jobIdParams = z.object({ id: z.string().regex(/^j-[0-9a-f]{12}$/, 'not a job id') }).strict();

export function jobRoutes(
  app: FastifyInstance,
  deps: { jobs: JobRunner; vaults: VaultService; testJobs: boolean },
): void {
  const { jobs, vaults } = deps;
  const view = async (job: Job): Promise<JobView> =>
    jobView(job, (await vaults.byId(job.vaultId))?.name ?? job.vaultId);

  route(app, {
    method: 'GET',
    url: '/api/v1/jobs',
    query: z.object({ vault: z.string() }).strict(),
    handler: async ({ query }): Promise<{ jobs: JobView[] }> => {
      const vault = await vaults.byName(query.vault);
      const list = await jobs.list(vault.id);
      list.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      return { jobs: list.map((j) => jobView(j, vault.name)) };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/jobs/:id',
    params: jobIdParams,
    handler: async ({ params }) => view(await jobs.get(params.id)),
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/jobs/:id/resume',
    params: jobIdParams,
    handler: async ({ params }) => view(await jobs.resume(params.id)),
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/jobs/:id/cancel',
    params: jobIdParams,
    handler: async ({ params }) => view(await jobs.cancel(params.id)),
  });

  if (deps.testJobs) {
    // TEST-ONLY (SECONDSITE_TEST_JOBS=1): starts a `test.steps` job; see test-job-type.ts.
    route(app, {
      method: 'POST',
      url: '/api/v1/test/jobs',
      body: z.object({ vault: z.string(), input: z.unknown() }).strict(),
      status: 201,
      handler: async ({ body }) => {
        const vault = await vaults.byName(body.vault);
        return view(
          await jobs.submit({ vaultId: vault.id, type: TEST_JOB_TYPE, input: body.input }),
        );
      },
    });
  }
}
