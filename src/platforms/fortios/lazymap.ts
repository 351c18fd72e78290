/**
 * Maps of the FortiOS model whose contents are fixed when the model is built but computed on first
 * use. A large backup holds tens of thousands of address objects; a local-in trace reads the few
 * hundred its policies name. Two kinds of deferral, which may be combined on one map:
 *
 * - **keys built on lookup** (`lazyKeys`): the keys and their order are known up front, each value is
 *   built by `build(key)` the first time it is looked up; the keys come first, in their order,
 *   before anything `set` on the map later (that is the order an eager build inserts them in);
 * - **a fill run before it could matter** (`deferFill`): `fill` may add entries; it runs before a
 *   lookup of a key `mayAdd` accepts that is not there yet, before `size`, any iteration or any
 *   change.
 *
 * The map stays a plain `Map` (the overrides are non-enumerable own properties, removed once
 * nothing is deferred any more), so it compares, iterates and serializes as one, and every answer —
 * `get`, `has`, `size`, iteration order, values — is the one an eager build gives.
 */

interface State<K, V> {
  /** Keys whose values are built on lookup; undefined once every value is in the map. */
  keys?: { has(k: K): boolean };
  order?: readonly K[];
  build?: (k: K) => V;
  built?: Map<K, V>;
  fill?: () => void;
  mayAdd?: (k: K) => boolean;
}

const proto = Map.prototype;
const METHODS = ["get", "has", "set", "delete", "clear", "keys", "values", "entries", "forEach"] as const;
const states = new WeakMap<Map<unknown, unknown>, State<unknown, unknown>>();

function stateOf<K, V>(m: Map<K, V>): State<K, V> {
  let s = states.get(m as Map<unknown, unknown>) as State<K, V> | undefined;
  if (s === undefined) {
    s = {};
    states.set(m as Map<unknown, unknown>, s as State<unknown, unknown>);
    install(m, s);
  }
  return s;
}

/** Runs the deferred fill, if any (it runs once; changes it makes go through the map's methods). */
function runFill<K, V>(s: State<K, V>): void {
  const f = s.fill;
  if (f === undefined) return;
  s.fill = undefined;
  s.mayAdd = undefined;
  f();
}

/** Puts every lazily built value in the map, keys first in their order, then what was set since. */
function materialize<K, V>(m: Map<K, V>, s: State<K, V>): void {
  const { keys, order, build, built } = s;
  if (keys === undefined) return;
  s.keys = undefined;
  s.order = undefined;
  s.build = undefined;
  s.built = undefined;
  const later = [...proto.entries.call(m)] as [K, V][];
  proto.clear.call(m);
  for (const k of order!) proto.set.call(m, k, built!.get(k) ?? build!(k));
  for (const [k, v] of later) proto.set.call(m, k, v);
}

/** Removes the overrides once nothing is deferred. */
function settle<K, V>(m: Map<K, V>, s: State<K, V>): void {
  if (s.keys !== undefined || s.fill !== undefined) return;
  const own = m as unknown as Record<PropertyKey, unknown>;
  for (const key of METHODS) delete own[key];
  delete own[Symbol.iterator];
  delete own.size;
  states.delete(m as Map<unknown, unknown>);
}

/** Everything deferred, done: the map is then an ordinary `Map`. */
export function settleAll<K, V>(m: Map<K, V>): void {
  const s = states.get(m as Map<unknown, unknown>) as State<K, V> | undefined;
  if (s === undefined) return;
  runFill(s);
  materialize(m, s);
  settle(m, s);
}

function lazyHas<K, V>(m: Map<K, V>, s: State<K, V>, k: K): boolean {
  return s.keys?.has(k) === true || proto.has.call(m, k);
}

function install<K, V>(m: Map<K, V>, s: State<K, V>): void {
  const define = (key: PropertyKey, desc: PropertyDescriptor): void => {
    Object.defineProperty(m, key, { ...desc, configurable: true, enumerable: false });
  };
  const before = (k: K): void => {
    if (s.fill !== undefined && !lazyHas(m, s, k) && s.mayAdd!(k)) {
      runFill(s);
      settle(m, s);
    }
  };
  /** Before anything that sees or changes the whole map. */
  const whole = (): void => {
    settleAll(m);
  };
  define("get", {
    writable: true,
    value(k: K): V | undefined {
      before(k);
      if (s.keys?.has(k)) {
        let v = s.built!.get(k);
        if (v === undefined) {
          v = s.build!(k);
          s.built!.set(k, v);
        }
        return v;
      }
      return proto.get.call(m, k) as V | undefined;
    },
  });
  define("has", {
    writable: true,
    value(k: K): boolean {
      before(k);
      return lazyHas(m, s, k);
    },
  });
  define("set", {
    writable: true,
    value(k: K, v: V): Map<K, V> {
      runFill(s);
      if (s.keys?.has(k)) materialize(m, s);
      proto.set.call(m, k, v);
      settle(m, s);
      return m;
    },
  });
  define("delete", {
    writable: true,
    value(k: K): boolean {
      runFill(s);
      if (s.keys?.has(k)) materialize(m, s);
      const r = proto.delete.call(m, k);
      settle(m, s);
      return r;
    },
  });
  for (const key of ["clear", "keys", "values", "entries", "forEach", Symbol.iterator] as const) {
    const orig = proto[key] as (...a: unknown[]) => unknown;
    define(key, {
      writable: true,
      value(...a: unknown[]): unknown {
        whole();
        return orig.apply(m, a);
      },
    });
  }
  define("size", {
    get(): number {
      whole();
      return Reflect.get(proto, "size", m) as number;
    },
  });
}

/**
 * Values for `order` (distinct keys) are built by `build` on first lookup; `keys` holds exactly
 * the keys of `order` (a set or map the caller has anyway). Call on a map that is empty or holds
 * nothing but what an eager build would have inserted after these keys.
 */
export function lazyKeys<K, V>(
  m: Map<K, V>,
  order: readonly K[],
  keys: { has(k: K): boolean },
  build: (k: K) => V,
): Map<K, V> {
  const s = stateOf(m);
  if (s.keys !== undefined) throw new Error("lazyKeys: keys already deferred");
  s.keys = keys;
  s.order = order;
  s.build = build;
  s.built = new Map();
  return m;
}

/** `fill` (which may add entries) runs before anything whose answer it could change. */
export function deferFill<K, V>(m: Map<K, V>, fill: () => void, mayAdd: (k: K) => boolean): Map<K, V> {
  const s = stateOf(m);
  if (s.fill !== undefined) throw new Error("deferFill: already deferred");
  s.fill = fill;
  s.mayAdd = mayAdd;
  return m;
}

/** Drops a deferred fill without running it (its owner runs the fill itself). */
export function undeferFill<K, V>(m: Map<K, V>): void {
  const s = states.get(m as Map<unknown, unknown>) as State<K, V> | undefined;
  if (s === undefined) return;
  s.fill = undefined;
  s.mayAdd = undefined;
  settle(m, s);
}

/** Whether `m` still defers something (for tests). */
export function isDeferred(m: Map<unknown, unknown>): boolean {
  return states.has(m);
}
