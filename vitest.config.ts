import { defineConfig } from 'vitest/config';

/** e2e scenarios on 127.0.1.x / 127.0.2.x (the demo's and the site addresses). */
const E2E_SITE_ADDRESSES = [
  'protection',
  'two-sites',
  'replication',
  'replication-crash',
  'demo',
  'single-server',
];

// Four lanes (STYLE.md rule 12): unit tests sit beside the code as *.test.ts; component,
// integration and e2e tests live under test/ and start real servers, processes and clients.
export default defineConfig({
  test: {
    // Four workers on two cores: most component and e2e tests wait on child processes and
    // sockets, not on the CPU; two e2e lanes plus two others cut the suite from ~13 to ~9 min.
    maxWorkers: 4,
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
      // Two e2e lanes run side by side, each one scenario at a time: the first holds every
      // scenario that uses 127.0.1.x/127.0.2.x with the real ports (8084 when free), the
      // second the others (their own addresses, or none), so no two scenarios race for a port.
      {
        test: {
          name: 'e2e',
          include: E2E_SITE_ADDRESSES.map((s) => `test/e2e/${s}/**/*.test.ts`),
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e-b',
          include: ['test/e2e/**/*.test.ts'],
          exclude: [...E2E_SITE_ADDRESSES.map((s) => `test/e2e/${s}/**`), '**/node_modules/**'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
