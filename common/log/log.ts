/**
 * Logging: JSON lines (pino) to stderr, one child logger per component with its context
 * ({component, vm, peer}); secrets are redacted by path so they never reach a log file.
 */
import pino from 'pino';

export type Logger = pino.Logger;

const REDACT = [
  'token',
  'secret',
  'privateKey',
  'sessionKey',
  '*.token',
  '*.secret',
  '*.privateKey',
  '*.sessionKey',
  'headers.authorization',
];

export function createLogger(opts: { name: string; level?: string; destination?: number }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? process.env['SECONDSITE_LOG_LEVEL'] ?? 'info',
      redact: { paths: REDACT, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    pino.destination({ fd: opts.destination ?? 2, sync: true }),
  );
}

/** A logger that drops everything: for unit tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
