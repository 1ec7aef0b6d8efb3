// Lint rules, including the import map of ../shared/STYLE.md ("Who may import whom"), which
// is enforced here so an arrow the design forbids fails `npm run lint`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const ioModules = [
  'node:fs',
  'node:fs/promises',
  'node:net',
  'level',
  'ws',
  '@grpc/grpc-js',
  'node-forge',
];

// zones: `target` may not import from `from` (paths from the repository root).
const zones = [
  { target: './common', from: ['./certs', './coordinator', './agent', './cli'] },
  { target: './certs', from: ['./coordinator', './agent', './cli'] },
  { target: './coordinator', from: ['./agent', './cli'] },
  {
    target: './agent/common',
    from: ['./coordinator', './agent/provider', './agent/host', './cli'],
  },
  { target: './agent/provider', from: ['./coordinator', './agent/host', './cli'] },
  { target: './agent/host', from: ['./coordinator', './agent/provider', './cli'] },
  {
    target: './cli',
    from: ['./certs', './coordinator', './agent', './common'],
    except: [
      './common/api-client',
      './common/errors',
      './common/log',
      './coordinator/main.ts',
      './agent/provider/main.ts',
      './agent/host/main.ts',
      './agent/guest/main.ts',
    ],
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'common/proto/gen/**', 'coverage/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: zones.flatMap((z) =>
            z.from.map((from) => ({
              target: z.target,
              from,
              except: z.except
                ?.filter((e) => e.startsWith(from))
                .map((e) => '.' + e.slice(from.length)),
            })),
          ),
        },
      ],
    },
  },
  {
    // Pure domain code: no I/O modules (STYLE.md rule 2).
    files: [
      '**/domain/**/*.ts',
      'agent/host/journal/*-pure.ts',
      'agent/host/journal/coalesce.ts',
      'agent/host/recovery/resolve.ts',
      'agent/host/recovery/resync-map.ts',
      'agent/host/sync/chunk-grid.ts',
      'agent/host/sync/hash-diff.ts',
      'agent/host/sync/resync-rules.ts',
      // R22: the bandwidth schedule and token bucket, the churn series, the setting's forms.
      'agent/host/replication/bandwidth.ts',
      'agent/host/vm/churn-stats.ts',
      'common/wire/bandwidth-setting.ts',
      // Ticket crypto and the AP checks (replay-file.ts and the transport hold the I/O).
      'common/tickets/ap-exchange.ts',
      'common/tickets/crypto.ts',
      'common/tickets/frames.ts',
      'common/tickets/replay-cache.ts',
      'common/tickets/ticket.ts',
    ],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: ioModules.map((name) => ({ name, message: 'domain code is pure: no I/O' })) },
      ],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
