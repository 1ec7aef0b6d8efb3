/**
 * A Store wrapper that fails chosen operations, for fault tests: it proves that a failed
 * write is reported and never acknowledged, and that nothing half-written is left behind.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { BatchOp, Store } from './store.ts';

export type StoreOp = 'get' | 'put' | 'del' | 'batch' | 'iterate';

/** Decides per call whether it fails; `key` is the first key the operation touches. */
export type FaultRule = (op: StoreOp, key: string) => boolean;

export interface FaultyStore extends Store {
  /** Replaces the rule; `undefined` lets everything through. */
  setFault(rule: FaultRule | undefined): void;
  readonly injected: number;
}

export function faultyStore(inner: Store): FaultyStore {
  let rule: FaultRule | undefined;
  let injected = 0;
  const check = (op: StoreOp, key: string): void => {
    if (rule?.(op, key) === true) {
      injected++;
      throw new SecondsiteError('SS_IO', `injected ${op} failure on ${key}`, { op, key });
    }
  };
  return {
    setFault(r) {
      rule = r;
    },
    get injected() {
      return injected;
    },
    async get<T>(key: string) {
      check('get', key);
      return inner.get<T>(key);
    },
    async put(key: string, value: unknown) {
      check('put', key);
      return inner.put(key, value);
    },
    async del(key: string) {
      check('del', key);
      return inner.del(key);
    },
    async batch(ops: readonly BatchOp[]) {
      check('batch', ops[0]?.key ?? '');
      return inner.batch(ops);
    },
    async *iterate<T>(prefix: string) {
      check('iterate', prefix);
      yield* inner.iterate<T>(prefix);
    },
    close: () => inner.close(),
  };
}
