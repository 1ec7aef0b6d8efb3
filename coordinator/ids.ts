import { randomBytes } from 'node:crypto';

/**
 * Short random ids people can type: a prefix and 12 hex digits (48 bits; for a million
 * objects the chance of any collision is ~2e-3, and creators check the index anyway).
 */
export function newId(prefix: 'v' | 'j' | 'k'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}
