import { defineConfig } from 'vitest/config';

// Four lanes (STYLE.md rule 12): unit tests sit beside the code as *.test.ts; component,
// integration and e2e tests live under test/ and start real servers, processes and clients.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{common,certs,coordinator,agent,cli}/**/*.test.ts'],
          exclude: ['**/*.component.test.ts', '**/node_modules/**'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'component',
          include: ['test/component/**/*.test.ts', '**/*.component.test.ts'],
          exclude: ['**/node_modules/**'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
