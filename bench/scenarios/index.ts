/** Every benchmark scenario, in the order `npm run bench` runs them. */
import type { Scenario } from '../harness.ts';
import { initialCopy } from './initial-copy.ts';
import { initialCopy8083 } from './initial-copy-8083.ts';
import { nbdFua4k, nbdSeqWrite } from './nbd.ts';
import { replicaApply } from './replica-apply.ts';
import { resync } from './resync.ts';
import { delta1pct } from './delta-1pct.ts';
import { churnRpo } from './churn-rpo.ts';
import { enable10Vms } from './enable-10vms.ts';
import { rto } from './rto.ts';
import { offlineSeed } from './offline-seed.ts';

export const SCENARIOS: Scenario[] = [
  nbdSeqWrite,
  nbdFua4k,
  replicaApply,
  delta1pct,
  initialCopy,
  initialCopy8083,
  resync,
  churnRpo,
  enable10Vms,
  rto,
  offlineSeed,
];
