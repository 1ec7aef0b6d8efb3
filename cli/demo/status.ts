/**
 * The two-site demo's screens: the live status block (the `item list` table, initial copy
 * progress, each item's reasons, the workload), the commands to try from another terminal,
 * and the final summary. Pure renderings of what the API returned.
 */
import type { ItemView } from '../../common/api-client/index.ts';
import { itemsTable } from '../commands/replication.ts';
import { humanSize } from '../output/table.ts';
import { BIN } from './processes.ts';
import { VAULT } from './layout.ts';

export interface WorkloadProgress {
  readonly vm: string;
  /** The workload's latest progress line ("12s running: 24 MiB in 384 writes, 2.0 MB/s"). */
  readonly line: string;
}

function initialCopy(items: readonly ItemView[]): string {
  const parts = items
    .filter((i) => i.initialReplication !== null)
    .map((i) => {
      const c = i.initialReplication ?? { bytesDone: 0, bytesTotal: 0 };
      const pct = c.bytesTotal === 0 ? 100 : Math.floor((c.bytesDone / c.bytesTotal) * 100);
      return `${i.vm} ${pct}% (${humanSize(c.bytesDone)} of ${humanSize(c.bytesTotal)})`;
    });
  return parts.length === 0
    ? 'initial copy: not started yet\n'
    : `initial copy: ${parts.join(', ')}\n`;
}

export function statusBlock(
  now: Date,
  items: readonly ItemView[],
  workloads: readonly WorkloadProgress[],
  ending: string,
): string {
  const reasons = items.flatMap((i) =>
    i.errors.map((e) => `  ${i.vm} ${e.code}: ${e.message} (what to do: ${e.action})\n`),
  );
  return [
    `--- ${now.toISOString().slice(11, 19)} UTC · ${ending}\n`,
    itemsTable(items),
    initialCopy(items),
    ...reasons,
    ...workloads.map((w) => `workload ${w.vm}: ${w.line || 'starting'}\n`),
  ].join('');
}

/** What to try from another terminal while the demo runs. */
export function tryNext(adminFile: string, nbd: string): string {
  const ss = `node ${BIN}`;
  return [
    '',
    'Try from another terminal (the demo keeps running):',
    `  export SECONDSITE_CONFIG=${adminFile}`,
    `  alias secondsite='${ss}'          # or: npx secondsite, from the repository`,
    `  secondsite item list --vault ${VAULT}`,
    `  secondsite item show --vault ${VAULT} VM1`,
    `  secondsite recovery-point list --vault ${VAULT} VM1`,
    `  secondsite vm show --vault ${VAULT} VMM-NewYork/VM1          # the primary, its NBD URI`,
    `  secondsite vm show --vault ${VAULT} VMM-Chicago/VM1          # the replica`,
    `  qemu-io -f raw -r '${nbd}' -c 'read -v 0 64'`,
    `  secondsite replication pause --vault ${VAULT} VM2            # then: replication resume`,
    `  secondsite job list --vault ${VAULT}`,
    '',
  ].join('\n');
}

/** One line per item at the end: state, health, how many recovery points (or why unknown). */
export function finalLine(item: ItemView, points: number | string): string {
  const latest =
    item.latestRecoveryPoint === null
      ? ''
      : `, latest ${item.latestRecoveryPoint.time} (${item.latestRecoveryPoint.type})`;
  const count =
    typeof points === 'string'
      ? `recovery points unknown: ${points}`
      : `${points} recovery point${points === 1 ? '' : 's'}`;
  return `  ${item.vm}: ${item.state}, health ${item.health}, ${count}${latest}\n`;
}

/** Terminal rows `text` takes, long lines wrapping at `columns`. */
export function screenLines(text: string, columns: number | undefined): number {
  const width = columns !== undefined && columns > 0 ? columns : Infinity;
  return text
    .split('\n')
    .slice(0, -1)
    .reduce((n, line) => n + Math.max(1, Math.ceil(line.length / width)), 0);
}
