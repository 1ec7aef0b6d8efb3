/**
 * Child process for test/component/ticket-skew-faketime.test.ts: the client half of the 8083
 * AP exchange, run under `faketime` so that its whole clock (Date, and so the authenticator's
 * timestamp) is off by the skew under test while the server's is not.
 *
 *   faketime -f +301s node bin/run-ts.mjs test/helpers/ticket-skew-driver.ts JSON
 *
 * JSON: { port, expectedPeer, credentials } with the ticket's Buffers as base64 (the test
 * process issued the ticket with the real time). Prints one JSON line on stdout:
 * `{"ok":true,"clientNow":MS}` when the server accepted the authenticator (its ApReply checked),
 * else `{"ok":false,"code":"SS_…","reason":"…","clientNow":MS}`; exit 0 either way (the test
 * judges), 2 on bad usage.
 */
import { writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { isSecondsiteError } from '../../common/errors/errors.ts';
import { connectTicketChannel } from '../../agent/host/transport/ticket-credentials.ts';
import { decodeCredentials, type SkewDriverInput } from './ticket-lab.ts';

const say = (o: Record<string, unknown>): void => void writeSync(1, `${JSON.stringify(o)}\n`);

async function main(arg: string | undefined): Promise<void> {
  if (arg === undefined) {
    process.stderr.write('usage: ticket-skew-driver.ts JSON\n');
    process.exit(2);
  }
  const input = JSON.parse(arg) as SkewDriverInput;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(input.port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const clientNow = Date.now();
  try {
    const stream = await connectTicketChannel(socket, {
      credentials: async () => decodeCredentials(input.credentials),
      expectedPeer: input.expectedPeer,
    });
    stream.destroy();
    say({ ok: true, clientNow });
  } catch (e) {
    if (!isSecondsiteError(e)) throw e;
    say({ ok: false, code: e.code, reason: e.details['reason'] ?? '', clientNow });
  } finally {
    socket.destroy();
  }
}

await main(process.argv[2]);
