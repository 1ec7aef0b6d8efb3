/** `secondsite storage-map create | delete | list` (R9): see network-map.ts. */
import type { Command } from 'commander';
import { registerMapCommands } from './network-map.ts';

export function registerStorageMapCommands(program: Command): void {
  registerMapCommands(program, 'storage', {
    noun: 'storage classification',
    description: 'storage maps: where replica disks of a classification go (R9)',
  });
}
