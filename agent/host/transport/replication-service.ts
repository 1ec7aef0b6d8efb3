/** The Replication service definition, from the one proto loader (common/proto/load.ts). */
import * as grpc from '@grpc/grpc-js';
import { loadPackageDefinition } from '../../../common/proto/load.ts';

let ctor: grpc.ServiceClientConstructor | undefined;

export function replicationService(): grpc.ServiceClientConstructor {
  ctor ??= (
    grpc.loadPackageDefinition(loadPackageDefinition()) as unknown as {
      secondsite: { v1: { Replication: grpc.ServiceClientConstructor } };
    }
  ).secondsite.v1.Replication;
  return ctor;
}
