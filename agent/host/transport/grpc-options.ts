/**
 * gRPC channel and server options of the replication port (8084), with their arithmetic.
 * Compiled once into frozen objects; both ends use the same numbers.
 */
import type { ChannelOptions } from '@grpc/grpc-js';
import { LIMITS } from '../replication/protocol.ts';

/**
 * HTTP/2 flow-control window for replication streams. At the default 64 KiB a stream moves 64
 * KiB per round trip: 0.35 GB/s on loopback, and on a 20 ms WAN link 3.2 MB/s. 8 MiB covers
 * 1 GB/s × 8 ms of round trip and holds two 4 MiB chunks in flight.
 */
export const FLOW_CONTROL_WINDOW = 8 * 1024 * 1024;

/**
 * Keepalive: a ping every 2 s when the connection is quiet, dropped 2.5 s after an unanswered
 * one, so a silent partition (packets dropped, no RST) is noticed within 2 + 2.5 = 4.5 s, under
 * the 5 s the design asks for. Pings are sent even without calls so that an idle channel knows.
 *
 * The timeout is not shorter on purpose: a ping is answered by the peer's event loop, and a
 * busy but healthy peer must not look partitioned. With 1 s, a replica applying a 750 MB
 * segment with synchronous I/O (since moved to the thread pool, recovery/async-io.ts) or a
 * primary loading one, missed the deadline and the connection was dropped mid-segment. What
 * still runs on the loop (chunk checks, coalescing) stays well under 2.5 s per turn.
 */
export const KEEPALIVE_TIME_MS = 2_000;
export const KEEPALIVE_TIMEOUT_MS = 2_500;

/**
 * Connections are closed after 1 h (with 5 min grace for a stream to finish a segment) so a
 * peer re-handshakes TLS, and with it re-presents a renewed certificate and re-checks the CA,
 * at least hourly. Expiry is checked per call anyway; this caps how long a revoked-by-rotation
 * chain stays in use.
 */
export const MAX_CONNECTION_AGE_MS = 60 * 60 * 1000;
export const MAX_CONNECTION_AGE_GRACE_MS = 5 * 60 * 1000;

export const CLIENT_OPTIONS: ChannelOptions = Object.freeze({
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': LIMITS.maxMessageBytes,
  'grpc.max_send_message_length': LIMITS.maxMessageBytes,
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
  // Reconnect backoff of the channel itself; the sender adds its own backoff per stream.
  'grpc.initial_reconnect_backoff_ms': 500,
  'grpc.max_reconnect_backoff_ms': 10_000,
});

export const SERVER_OPTIONS: ChannelOptions = Object.freeze({
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  // Let clients ping every 2 s even without calls (C-core servers would otherwise answer
  // GOAWAY "too_many_pings"; grpc-js servers accept any rate, this states the intent).
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': KEEPALIVE_TIME_MS,
  'grpc.max_receive_message_length': LIMITS.maxMessageBytes,
  'grpc.max_send_message_length': LIMITS.maxMessageBytes,
  'grpc.max_connection_age_ms': MAX_CONNECTION_AGE_MS,
  'grpc.max_connection_age_grace_ms': MAX_CONNECTION_AGE_GRACE_MS,
});
