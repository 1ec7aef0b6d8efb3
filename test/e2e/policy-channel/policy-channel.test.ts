/**
 * Changing a policy's authentication moves replication to the other channel without a resync
 * (issue #7 item 5). See README.md for the steps and what they prove.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ItemView, JobView, PolicyUpdateView } from '../../../common/api-client/index.ts';
import { replicationPort } from '../../helpers/replication-lab.ts';
import { cliJson } from '../../helpers/secondsite-cli.ts';
import { qemuIo, SiteLab } from '../../helpers/site-lab.ts';
import {
  expectIdentical,
  goldPolicy,
  itemOf,
  nbdOf,
  nextPoint,
  replicaAt,
  startTwoSites,
} from '../../helpers/two-site-protection.ts';
import { waitFor } from '../../helpers/wait-for.ts';

/** This scenario's own loopback addresses (no other test uses them). */
const NY = '127.0.9.1';
const CHI = '127.0.10.1';
/** Copy frequency 30 s runs as 3 s cycles. */
const TIME_SCALE = '0.1';

let lab: SiteLab;

/** A VM's replication as `host vm list --json` prints it (agent/host/control/control-client.ts). */
interface LocalReplication {
  role: string;
  state: string;
  peerAddress: string;
  epoch: number;
  baseline: string;
  lastAckedSeq: number;
  copy?: { bytesDone: number; bytesTotal: number };
  resync?: { bytesCompared: number; bytesSent: number };
  segmentsVia?: { certificate: number; ticket: number };
}

/** VM1 as a host agent reports it locally (its replication status). */
async function local(host: string): Promise<LocalReplication> {
  const vms = await cliJson<Array<{ name: string; replication: LocalReplication | null }>>(
    ['host', 'vm', 'list', '--data', lab.path(host), '--json'],
    {},
  );
  const r = vms.find((v) => v.name === 'VM1')?.replication;
  if (!r) throw new Error(`VM1 is not paired on ${host}`);
  return r;
}

const via = async (): Promise<{ cert: number; ticket: number }> => {
  const r = (await local('chi-hv1')).segmentsVia;
  if (r === undefined) throw new Error('chi-hv1 reports no per-channel counts for VM1');
  return { cert: r.certificate, ticket: r.ticket };
};

/** The replica at VM1's next point (after a write made now) equals the primary. */
async function writeAndCompare(pattern: string, at: string): Promise<void> {
  const uri = await nbdOf(lab, 'VMM-NewYork/VM1');
  expect(qemuIo(uri, `write -P ${pattern} ${at} 1M`, 'flush').code).toBe(0);
  const point = await nextPoint(lab, 'VM1', Date.now());
  expectIdentical(await replicaAt(lab, 'chi-hv1', 'VM1', point), uri);
}

const update = (...flags: string[]): Promise<PolicyUpdateView> =>
  lab.cli(['policy', 'update', '--vault', 'prod', '--name', 'gold', ...flags]);

/** What must not move across a channel change: the item and the source's replication state. */
interface Baseline {
  item: ItemView;
  source: LocalReplication;
}

async function baseline(): Promise<Baseline> {
  return { item: await itemOf(lab, 'VM1'), source: await local('ny-hv1') };
}

/** No initial copy, no resync, same epoch and baseline; the cursor only moved forward. */
async function expectNoRestart(before: Baseline): Promise<void> {
  const item = await itemOf(lab, 'VM1');
  expect(item.state).toBe('protected');
  expect(item.epoch).toBe(before.item.epoch);
  expect(item.initialReplication?.bytesDone).toBe(before.item.initialReplication?.bytesDone);
  const source = await local('ny-hv1');
  expect(source).toMatchObject({ epoch: before.source.epoch, baseline: 'copied' });
  expect(source.copy).toEqual(before.source.copy);
  expect(source.resync).toBeUndefined();
  expect(source.lastAckedSeq).toBeGreaterThan(before.source.lastAckedSeq);
  const jobs = await lab.cli<JobView[]>(['job', 'list', '--vault', 'prod']);
  expect(jobs.filter((j) => j.type === 'replication.resync')).toEqual([]);
  expect(jobs.filter((j) => j.type === 'replication.enable')).toHaveLength(1);
}

beforeAll(async () => {
  lab = new SiteLab('ss-e2e-polch-', { SECONDSITE_TIME_SCALE: TIME_SCALE });
});

afterAll(async () => {
  await lab.close();
});

describe('a policy auth change moves replication to the other channel', () => {
  it('1. two sites on 127.0.9.1 / 127.0.10.1; gold (certificate) protects VM1', async () => {
    await startTwoSites(lab, {
      port: await replicationPort([NY, CHI]),
      ips: { ny: NY, chi: CHI },
      vms: [
        {
          name: 'VM1',
          host: 'ny-hv1',
          size: '16MiB',
          classification: 'GOLD',
          nics: [{ network: 'VMNetwork1 NewYork', subnet: 'web' }],
        },
      ],
    });
    await goldPolicy(lab);
    const uri = await nbdOf(lab, 'VMM-NewYork/VM1');
    expect(qemuIo(uri, 'write -P 0x11 0 2M', 'flush').code).toBe(0);
    const job = await lab.cli<JobView>([
      'replication',
      'enable',
      '--vault',
      'prod',
      '--source-cloud',
      'VMM-NewYork/GoldCloud1',
      'VM1',
    ]);
    expect(job.state).toBe('succeeded');
    await waitFor(async () => (await itemOf(lab, 'VM1')).state === 'protected', {
      what: 'VM1 protected',
      timeoutMs: 120_000,
    });
    await writeAndCompare('0x21', '4M');
    expect((await local('ny-hv1')).peerAddress).not.toBe('');
    const v = await via();
    expect(v.cert).toBeGreaterThan(0);
    expect(v.ticket).toBe(0);
  });

  it('2. negative: a bad auth is refused naming --auth (exit 2), nothing changes', async () => {
    const r = await lab.refused([
      'policy',
      'update',
      '--vault',
      'prod',
      '--name',
      'gold',
      '--auth',
      'ntlm',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--auth');
    const none = await lab.refused(['policy', 'update', '--vault', 'prod', '--name', 'gold']);
    expect(none.code).toBe(2);
    const policies = await lab.cli<Array<{ name: string; auth: string }>>([
      'policy',
      'list',
      '--vault',
      'prod',
    ]);
    expect(policies.map((p) => [p.name, p.auth])).toEqual([['gold', 'certificate']]);
  });

  it('3. --auth kerberos: the new segments come over 8083, with no resync or initial copy', async () => {
    const before = await baseline();
    const u = await update('--auth', 'kerberos');
    expect(u.policy).toMatchObject({ auth: 'kerberos', port: 8083 });
    expect(u.changed).toEqual(['auth', 'port']);
    expect(u.job).toMatchObject({ type: 'policy.apply', state: 'succeeded' });
    // The source now dials the replica's ticket port (OS-chosen in the lab, reported).
    const source = await local('ny-hv1');
    expect(source.peerAddress).not.toBe(before.source.peerAddress);
    expect(source.peerAddress.startsWith(`${CHI}:`)).toBe(true);
    const switched = await via();
    await writeAndCompare('0x5c', '8M');
    await waitFor(async () => (await via()).ticket > switched.ticket, {
      what: 'segments applied over the ticket channel',
    });
    expect((await via()).cert).toBe(switched.cert);
    await expectNoRestart(before);
  });

  it('4. back to --auth certificate: 8084 again, still no resync', async () => {
    const before = await baseline();
    const certAddress = (await local('ny-hv1')).peerAddress;
    const u = await update('--auth', 'certificate');
    expect(u.policy).toMatchObject({ auth: 'certificate', port: 8084 });
    expect(u.job).toMatchObject({ type: 'policy.apply', state: 'succeeded' });
    expect((await local('ny-hv1')).peerAddress).not.toBe(certAddress);
    const switched = await via();
    await writeAndCompare('0x7e', '12M');
    await waitFor(async () => (await via()).cert > switched.cert, {
      what: 'segments applied over the certificate channel',
    });
    expect((await via()).ticket).toBe(switched.ticket);
    await expectNoRestart(before);
  });

  it('5. the same auth again changes nothing and starts no job', async () => {
    const u = await update('--auth', 'certificate');
    expect(u.changed).toEqual([]);
    expect(u.job).toBeNull();
  });
});
