/** Every benchmark scenario, in the order `npm run bench` runs them. */
import type { Scenario } from '../harness.ts';
import { nbdFua4k, nbdSeqWrite } from './nbd.ts';
import { replicaApply } from './replica-apply.ts';

export const SCENARIOS: Scenario[] = [nbdSeqWrite, nbdFua4k, replicaApply];
