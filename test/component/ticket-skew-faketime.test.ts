/**
 * Clock skew on 8083 with a real skewed process (issue #7: "skew of +5:01 and −5:01 refused,
 * ±4:59 accepted"). The unit tests (common/tickets/ap-exchange.test.ts) inject a clock; here
 * the client is a separate Node process run under libfaketime (`faketime -f ±Ns`, LAB.md
 * "Clock skew without touching the clock"), so its whole notion of time is off, as a host with
 * a wrong clock would be, while the ticket server in this process keeps the real time.
 *
 * Each step: the test issues a fresh ticket (real time), the driver
 * (test/helpers/ticket-skew-driver.ts) makes the AP exchange against a real ticket server on
 * 127.0.0.1:0 and prints the outcome. +301 s and −301 s are refused with SS_CLOCK_SKEW (reason
 * "skew"); +299 s and −299 s are accepted (the server's ApReply checked by the client).
 * The margins (±1 s around the 5-minute limit) dwarf the time a local exchange takes.
 *
 * A missing `faketime` fails the suite naming what to install (CI installs the Debian package).
 */
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTicketServer, type TicketServer } from '../../agent/host/transport/ticket-server.ts';
import { silentLogger } from '../../common/log/log.ts';
import { generateLongTermKey } from '../../common/tickets/crypto.ts';
import { ReplayCache, type ReplayEntry } from '../../common/tickets/replay-cache.ts';
import { issueTicket } from '../../common/tickets/ticket.ts';
import { encodeCredentials, type SkewDriverInput } from '../helpers/ticket-lab.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SERVER_URI = 'secondsite://v1/host/hv-b';
const CLIENT_URI = 'secondsite://v1/host/hv-a';
const hasFaketime = spawnSync('faketime', ['-f', '+0s', 'true']).status === 0;

const hostKey = generateLongTermKey(1);
let grpcServer: grpc.Server;
let ticketServer: TicketServer;
let port: number;

interface Outcome {
  readonly ok: boolean;
  readonly code?: string;
  readonly reason?: string;
  readonly clientNow: number;
}

/** Runs the driver with its clock moved by `offset` (faketime's "+301s" form). */
function exchangeSkewed(offset: string): Promise<{ outcome: Outcome; startedAt: number }> {
  const input: SkewDriverInput = {
    port,
    expectedPeer: SERVER_URI,
    credentials: encodeCredentials(
      issueTicket({ client: CLIENT_URI, server: SERVER_URI, serverKey: hostKey, now: Date.now() }),
    ),
  };
  const startedAt = Date.now();
  const child = spawn(
    'faketime',
    [
      '-f',
      offset,
      process.execPath,
      'bin/run-ts.mjs',
      'test/helpers/ticket-skew-driver.ts',
      JSON.stringify(input),
    ],
    // Only the wall clock moves: timers (monotonic) keep running as usual.
    { cwd: ROOT, env: { ...process.env, FAKETIME_DONT_FAKE_MONOTONIC: '1' } },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((done, fail) => {
    child.once('error', fail);
    child.once('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || line === '') {
        fail(new Error(`driver exited ${code}: ${err || out}`));
        return;
      }
      done({ outcome: JSON.parse(line) as Outcome, startedAt });
    });
  });
}

beforeAll(async () => {
  if (!hasFaketime) return;
  grpcServer = new grpc.Server();
  // A trusted, empty replay store: nothing is refused for having been lost.
  const entries: ReplayEntry[] = [];
  ticketServer = createTicketServer({
    address: '127.0.0.1',
    port: 0,
    grpcServer,
    self: SERVER_URI,
    keyFor: (v) => (v === hostKey.version ? hostKey.key : undefined),
    replay: new ReplayCache({ load: () => [], append: (e) => void entries.push(e) }, Date.now()),
    log: silentLogger,
  });
  port = await ticketServer.listen();
});

afterAll(async () => {
  await ticketServer?.shutdown();
  grpcServer?.forceShutdown();
});

describe('8083 clock skew with a faketime client', () => {
  // Required like qemu-io is for the NBD tests (.ci/run installs it): a missing tool fails
  // the suite with what to install, never skips the skew cases.
  it('has faketime to skew the client with', () => {
    expect(hasFaketime, 'faketime is missing: apt-get install faketime libfaketime').toBe(true);
  });

  it.each([
    ['+301s', 301],
    ['-301s', -301],
  ])('refuses a client %s off with SS_CLOCK_SKEW', async (offset, seconds) => {
    const { outcome, startedAt } = await exchangeSkewed(offset);
    // The driver really ran skewed (its clock, read at connect, is about `seconds` off).
    expect(Math.abs(outcome.clientNow - startedAt - seconds * 1000)).toBeLessThan(60_000);
    expect(outcome).toMatchObject({ ok: false, code: 'SS_CLOCK_SKEW', reason: 'skew' });
  });

  it.each([
    ['+299s', 299],
    ['-299s', -299],
  ])('accepts a client %s off', async (offset, seconds) => {
    const { outcome, startedAt } = await exchangeSkewed(offset);
    expect(Math.abs(outcome.clientNow - startedAt - seconds * 1000)).toBeLessThan(60_000);
    expect(outcome).toEqual({ ok: true, clientNow: outcome.clientNow });
  });
});
