/** Every benchmark scenario, in the order `npm run bench` runs them. */
import type { Scenario } from '../harness.ts';
import { nbdFua4k, nbdSeqWrite } from './nbd.ts';

export const SCENARIOS: Scenario[] = [nbdSeqWrite, nbdFua4k];
