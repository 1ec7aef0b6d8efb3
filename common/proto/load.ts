/**
 * The one module that loads the product's .proto files (STYLE.md rule 7). Everything that
 * speaks a protocol gets its service definitions and message codecs from here, with the same
 * options `npm run proto:gen` gives proto-loader-gen-types, so generated types match runtime.
 */
import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
const V1 = join(PROTO_ROOT, 'secondsite', 'v1');

export const LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
});

function protoFiles(): string[] {
  return readdirSync(V1)
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => `secondsite/v1/${f}`);
}

let packageDefinition: protoLoader.PackageDefinition | undefined;

/** The gRPC package definition of every secondsite service (lazily loaded once). */
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync(protoFiles(), LOADER_OPTIONS);
  return packageDefinition;
}

let root: protobuf.Root | undefined;

/** A protobufjs Root of every message, for framing protos outside gRPC (unix sockets, WS). */
export function protoRoot(): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) =>
      target.startsWith('/') ? target : join(PROTO_ROOT, target);
    r.loadSync(protoFiles(), { keepCase: false });
    r.resolveAll();
    root = r;
  }
  return root;
}

/** A codec for one message type, converting to plain objects with the loader's options. */
export interface MessageCodec<T> {
  encode(value: T): Buffer;
  decode(bytes: Uint8Array): T;
}

export function messageCodec<T>(fullName: string): MessageCodec<T> {
  const type = protoRoot().lookupType(fullName);
  return {
    encode(value: T): Buffer {
      return Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish());
    },
    decode(bytes: Uint8Array): T {
      return type.toObject(type.decode(bytes), {
        longs: String,
        enums: String,
        defaults: true,
        oneofs: true,
      }) as T;
    },
  };
}
