/**
 * Every error code the product emits, with its kind and what the user should do. docs/errors.md
 * is kept complete against this table by a unit test (common/errors/catalogue.test.ts).
 */
export type ErrorKind = 'bad-input' | 'not-found' | 'conflict' | 'unauthenticated' | 'failed';

interface CatalogueEntry {
  readonly kind: ErrorKind;
  readonly action: string;
}

export const ERROR_CATALOGUE = {
  SS_BAD_INPUT: {
    kind: 'bad-input',
    action: 'Correct the named field and run the command again; nothing was changed.',
  },
  SS_NOT_FOUND: {
    kind: 'not-found',
    action: 'Check the name; list the objects of that kind to see what exists.',
  },
  SS_CONFLICT: {
    kind: 'conflict',
    action: 'The object is in a state that does not allow this action; check its state and retry.',
  },
  SS_DATA_FOLDER_LOCKED: {
    kind: 'conflict',
    action: 'Another process already uses this data folder; stop it or choose another folder.',
  },
  SS_UNAUTHENTICATED: {
    kind: 'unauthenticated',
    action: 'Check the credentials (admin token, certificate or key file) you are using.',
  },
  SS_IO: {
    kind: 'failed',
    action:
      'A disk or file operation failed; check free space and permissions in the data folder, then retry.',
  },
  SS_JOURNAL_CORRUPT: {
    kind: 'failed',
    action:
      'The journal could not be trusted past a record; the VM needs a resync (secondsite replication resync).',
  },
  SS_RESYNC_REQUIRED: {
    kind: 'conflict',
    action:
      'The VM journal overflowed or cannot be trusted; run secondsite replication resync for the VM.',
  },
  SS_SEGMENT_OUT_OF_ORDER: {
    kind: 'conflict',
    action:
      "The replica expected another journal segment; the sender resends from the replica's last applied segment. If it persists, run secondsite replication resync for the VM.",
  },
  SS_UNDO_CORRUPT: {
    kind: 'failed',
    action:
      'Undo data of the replica failed its checksum; recovery points older than that segment cannot be used. Choose a later point, or resync the VM.',
  },
  SS_TIMEOUT: {
    kind: 'failed',
    action:
      'The operation did not finish in time; check that the peer process is running and reachable, then retry.',
  },
  SS_UNAVAILABLE: {
    kind: 'failed',
    action:
      'A process the command needs is not reachable; check that it is running and its address.',
  },
  SS_PROTOCOL: {
    kind: 'failed',
    action:
      'A peer sent a malformed or unexpected message; check that both sides run compatible versions.',
  },
  SS_PROTOCOL_INCOMPATIBLE: {
    kind: 'conflict',
    action:
      'The two hosts share no replication protocol version; upgrade the older host. Replication of the VM stays stopped until then.',
  },
  SS_CHECKSUM_MISMATCH: {
    kind: 'failed',
    action:
      'Data arrived different from what was sent and was refused; it is sent again automatically. If it repeats, check memory and network hardware.',
  },
  SS_NOT_PAIRED: {
    kind: 'unauthenticated',
    action:
      "The calling host is not the peer paired with this VM on this host; check the VM's replication pairing.",
  },
  SS_STORE_VERSION: {
    kind: 'failed',
    action:
      'The data folder was written by a newer secondsite (or cannot be upgraded); run the version that wrote it.',
  },
  SS_CANCELLED: {
    kind: 'failed',
    action: 'The job was cancelled on request; start the action again if it is still needed.',
  },
  SS_CERT_INVALID: {
    kind: 'unauthenticated',
    action:
      'A certificate was unreadable, expired, not yet valid, from another CA or without a valid secondsite identity; check clocks, then renew or re-enrol.',
  },
  SS_CSR_INVALID: {
    kind: 'bad-input',
    action:
      'The certificate request was malformed, badly signed or asked for another identity; make a new key and request on the machine itself.',
  },
  SS_KEY_EXPIRED: {
    kind: 'unauthenticated',
    action: 'The registration key or token has expired; download a new one and retry.',
  },
  SS_KEY_INVALID: {
    kind: 'unauthenticated',
    action:
      "The registration key or token is altered, revoked or for another vault; download a new one for this vault. For a host join token, copy <provider data>/host-join-token of the host's provider again.",
  },
  SS_KEY_ALTERED: {
    kind: 'unauthenticated',
    action:
      'The registration key file was changed after download (a field or its secret differs from what the coordinator issued); download a new key and use the file as it is.',
  },
  SS_KEY_REVOKED: {
    kind: 'unauthenticated',
    action:
      'The registration key was revoked (secondsite key revoke); download a new key for the vault.',
  },
  SS_KEY_USED: {
    kind: 'unauthenticated',
    action:
      'The single-use registration key was already used to register a server; download a new key.',
  },
  SS_KEY_OTHER_VAULT: {
    kind: 'unauthenticated',
    action:
      'The registration key belongs to another vault than the one asked for (or the provider is registered in another vault); download a key from the right vault, or use another data folder.',
  },
  SS_KEY_WRONG_SERVER: {
    kind: 'unauthenticated',
    action:
      'The registration key is bound to another server name (key download --server); register under that name or download a key for this server.',
  },
  SS_FINGERPRINT_MISMATCH: {
    kind: 'unauthenticated',
    action:
      'The server CA does not match the fingerprint pinned in the key or token; check the address, or get a new key from the right coordinator.',
  },
  SS_VERIFY_FAILED: {
    kind: 'failed',
    action:
      'Data read back differs from what was written; the message names the first block. Keep the data folder and report it.',
  },
  SS_HOST_VERSION_MISMATCH: {
    kind: 'conflict',
    action:
      'All hosts under one replication policy must run the same host OS version; the message names the hosts that differ. Create another policy for them, or associate other clouds.',
  },
  SS_NOT_PROTECTABLE: {
    kind: 'conflict',
    action:
      'The VM cannot be protected as asked (the message says why, e.g. its cloud has no replication policy). Associate its cloud with a policy (secondsite policy associate) or pick another VM.',
  },
  SS_TICKET_INVALID: {
    kind: 'unauthenticated',
    action:
      'A ticket, authenticator or ticket reply on the replication port 8083 was altered, sealed under an unknown key version, meant for another host or presented by another client (details.reason names the check); the host fetches a new ticket from the coordinator. If it persists, re-enrol the host whose long-term key changed.',
  },
  SS_TICKET_EXPIRED: {
    kind: 'unauthenticated',
    action:
      'The ticket is past its end time or not valid yet (details.reason); the host fetches a new ticket. If "not-yet-valid" repeats, check the clocks of both hosts and the coordinator.',
  },
  SS_REVOKED: {
    kind: 'unauthenticated',
    action:
      'The calling host (or this certificate of it) was revoked by the coordinator; re-enrol the host if it should replicate again.',
  },
  SS_CLOCK_SKEW: {
    kind: 'unauthenticated',
    action:
      "The two hosts' clocks differ by more than 5 minutes, so ticket authentication refuses the connection; synchronise both hosts' clocks (NTP).",
  },
  SS_REPLAY: {
    kind: 'unauthenticated',
    action:
      'An authenticator was presented twice (a replayed connection attempt, or a replication port whose replay cache was lost refuses tickets for 5 minutes after start); genuine hosts retry with a fresh one by themselves. If it persists, look for a copy of the traffic being replayed.',
  },
  SS_SCRIPT_FAILED: {
    kind: 'failed',
    action:
      "A recovery plan's script exited non-zero, timed out or could not start; its exit code and the end of its output are in the job step (secondsite job show). Fix the script, then run the plan again.",
  },
  SS_IMPORT_INVALID: {
    kind: 'failed',
    action:
      'The offline export folder at the import path is damaged or incomplete (the message names the file and chunk); copy the whole export folder from the source host again, then resume the job.',
  },
  SS_INTERNAL: {
    kind: 'failed',
    action: 'An unexpected error; the logs of the process name the cause. Please report it.',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];
