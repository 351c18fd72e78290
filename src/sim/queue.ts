/**
 * Event queue of the discrete-event simulation, ordered by (time, insertion sequence). The
 * sequence number makes ties deterministic: two events at the same virtual millisecond run in the
 * order they were scheduled.
 *
 * Two structures share that one order:
 * - FIFO lanes, one per fixed delay used with {@link EventQueue.pushAfter} (packet latency, the first
 *   retransmission timeout, keepalive and DPD intervals…): events scheduled "now + d" for the same d
 *   are already sorted, so push and pop are O(1);
 * - a binary min-heap in flat typed arrays for everything else (rekey timers with jitter, absolute
 *   times). Flat arrays keep the sift loops in cache; a heap of objects was 3× slower at 10⁵ entries.
 */
export interface SimEvent {
  /** Virtual time, integer milliseconds. */
  t: number;
  seq: number;
  /** Called with {@link arg}: hot events pass their object instead of allocating a closure. */
  fn: (arg: never) => void;
  arg: unknown;
  /** Cancelled timers stay queued and are skipped when popped (cheaper than removal). */
  dead: boolean;
}

/** Runs an event's callback. */
export function fire(ev: SimEvent): void {
  (ev.fn as (arg: unknown) => void)(ev.arg);
}

class Lane {
  buf: SimEvent[] = [];
  head = 0;
  constructor(readonly delay: number) {}
  get empty(): boolean {
    return this.head >= this.buf.length;
  }
  shift(): SimEvent {
    const ev = this.buf[this.head]!;
    this.buf[this.head] = undefined as unknown as SimEvent;
    this.head++;
    // Compact now and then so the array does not grow without bound.
    if (this.head > 4096 && this.head * 2 > this.buf.length) {
      this.buf = this.buf.slice(this.head);
      this.head = 0;
    }
    return ev;
  }
}

const MAX_LANES = 8;
/** A delay gets a lane once it has been used this often (one-off delays stay in the heap). */
const LANE_AFTER_USES = 16;

export class EventQueue {
  // Small at first: the benchmark builds one engine per tunnel (its queue holds a handful of events).
  private ht = new Float64Array(64);
  private hs = new Float64Array(64);
  private he: SimEvent[] = [];
  private n = 0;
  private nextSeq = 0;
  private readonly lanes = new Map<number, Lane>();
  private laneList: Lane[] = [];
  private readonly uses = new Map<number, number>();
  private now = 0;
  /** {@link best}'s answer while nothing was pushed or popped since (it is asked several times per event). */
  private bestLane: Lane | null = null;
  private bestValid = false;
  /** Time and sequence number of the first event, live or not ({@link best}'s, ∞ when empty). */
  private bestT = Number.POSITIVE_INFINITY;
  private bestS = Number.POSITIVE_INFINITY;

  get size(): number {
    let s = this.n;
    for (const l of this.laneList) s += l.buf.length - l.head;
    return s;
  }

  /** Schedules at an absolute time. */
  push(t: number, fn: () => void): SimEvent {
    return this.pushArg(t, fn, undefined);
  }

  /** Schedules `fn(arg)` at an absolute time. */
  pushArg<T>(t: number, fn: (arg: T) => void, arg: T): SimEvent {
    const ev: SimEvent = { t, seq: this.nextSeq++, fn, arg, dead: false };
    this.heapPush(ev);
    return ev;
  }

  /**
   * Reserves `n` consecutive sequence numbers for events pushed later with {@link pushSeq}: they
   * keep the place in the (time, sequence) order they would have had if pushed now.
   */
  reserve(n: number): number {
    const s = this.nextSeq;
    this.nextSeq += n;
    return s;
  }

  /** Schedules `fn(arg)` at `t` with a sequence number from {@link reserve} (heap: any order). */
  pushSeq<T>(t: number, seq: number, fn: (arg: T) => void, arg: T): SimEvent {
    const ev: SimEvent = { t, seq, fn, arg, dead: false };
    this.heapPush(ev);
    return ev;
  }

  /** Queues an event made elsewhere (its time and sequence number already set). */
  insert(ev: SimEvent): void {
    this.heapPush(ev);
  }

  /** Schedules at `now + delay`; fixed delays go to their FIFO lane. */
  pushAfter(now: number, delay: number, fn: () => void): SimEvent {
    return this.pushAfterArg(now, delay, fn, undefined);
  }

  /** Schedules `fn(arg)` at `now + delay`. */
  pushAfterArg<T>(now: number, delay: number, fn: (arg: T) => void, arg: T): SimEvent {
    const t = now + delay;
    const ev: SimEvent = { t, seq: this.nextSeq++, fn, arg, dead: false };
    let lane = this.lanes.get(delay);
    if (!lane && this.laneList.length < MAX_LANES && now >= this.now) {
      const n = (this.uses.get(delay) ?? 0) + 1;
      this.uses.set(delay, n);
      if (n >= LANE_AFTER_USES) {
        lane = new Lane(delay);
        this.lanes.set(delay, lane);
        this.laneList.push(lane);
        this.uses.delete(delay);
      }
    }
    // A lane is only valid while "now" never goes backwards, which the engine guarantees.
    if (lane && now >= this.now) {
      this.now = now;
      lane.buf.push(ev);
      this.bestValid = false;
    } else {
      this.heapPush(ev);
    }
    return ev;
  }

  private heapPush(ev: SimEvent): void {
    this.bestValid = false;
    if (this.n === this.ht.length) {
      const c = this.ht.length * 2;
      const t2 = new Float64Array(c);
      t2.set(this.ht);
      this.ht = t2;
      const s2 = new Float64Array(c);
      s2.set(this.hs);
      this.hs = s2;
    }
    const T = this.ht;
    const S = this.hs;
    const E = this.he;
    const t = ev.t;
    const sq = ev.seq;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = T[p]!;
      if (pt < t || (pt === t && S[p]! < sq)) break;
      T[i] = pt;
      S[i] = S[p]!;
      E[i] = E[p]!;
      i = p;
    }
    T[i] = t;
    S[i] = sq;
    E[i] = ev;
  }

  private heapPop(): SimEvent {
    this.bestValid = false;
    const T = this.ht;
    const S = this.hs;
    const E = this.he;
    const top = E[0]!;
    const n = --this.n;
    if (n > 0) {
      const lt = T[n]!;
      const ls = S[n]!;
      const le = E[n]!;
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        let ct = T[c]!;
        const r = c + 1;
        if (r < n) {
          const rt = T[r]!;
          if (rt < ct || (rt === ct && S[r]! < S[c]!)) {
            c = r;
            ct = rt;
          }
        }
        if (lt < ct || (lt === ct && ls < S[c]!)) break;
        T[i] = ct;
        S[i] = S[c]!;
        E[i] = E[c]!;
        i = c;
      }
      T[i] = lt;
      S[i] = ls;
      E[i] = le;
    }
    E[n] = undefined as unknown as SimEvent;
    return top;
  }

  /** The lane whose head comes first, or null when the heap top comes first. */
  private best(): Lane | null {
    if (this.bestValid) return this.bestLane;
    let bt = this.n > 0 ? this.ht[0]! : Number.POSITIVE_INFINITY;
    let bs = this.n > 0 ? this.hs[0]! : Number.POSITIVE_INFINITY;
    let best: Lane | null = null;
    const ls = this.laneList;
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i]!;
      if (l.head >= l.buf.length) continue;
      const e = l.buf[l.head]!;
      if (e.t < bt || (e.t === bt && e.seq < bs)) {
        bt = e.t;
        bs = e.seq;
        best = l;
      }
    }
    this.bestLane = best;
    this.bestT = bt;
    this.bestS = bs;
    this.bestValid = true;
    return best;
  }

  /** Pops the head of a lane. */
  private shiftLane(l: Lane): SimEvent {
    this.bestValid = false;
    return l.shift();
  }

  /**
   * Time of the next live event (∞ if none). Cancelled events at the head are discarded on the
   * way, as popping would (the lanes' clock is not advanced: only live pops do that).
   */
  peekLiveTime(): number {
    for (;;) {
      const l = this.best();
      if (l) {
        const ev = l.buf[l.head]!;
        if (!ev.dead) return ev.t;
        this.shiftLane(l);
        continue;
      }
      if (this.n === 0) return Number.POSITIVE_INFINITY;
      if (!this.he[0]!.dead) return this.ht[0]!;
      this.heapPop();
    }
  }

  /**
   * Some live event comes before (t, seq) in the queue's order. Cancelled events at the head are
   * discarded on the way, as in {@link peekLiveTime}.
   */
  liveBefore(t: number, seq: number): boolean {
    // Nothing at all (live or cancelled) comes before: the common answer, without the loop.
    if (!this.bestValid) this.best();
    if (this.bestT > t || (this.bestT === t && this.bestS > seq)) return false;
    for (;;) {
      const l = this.best();
      if (l) {
        const ev = l.buf[l.head]!;
        if (ev.dead) {
          this.shiftLane(l);
          continue;
        }
        return ev.t < t || (ev.t === t && ev.seq < seq);
      }
      if (this.n === 0) return false;
      const ev = this.he[0]!;
      if (ev.dead) {
        this.heapPop();
        continue;
      }
      return ev.t < t || (ev.t === t && ev.seq < seq);
    }
  }

  peekTime(): number {
    const l = this.best();
    if (l) return l.buf[l.head]!.t;
    return this.n > 0 ? this.ht[0]! : Number.POSITIVE_INFINITY;
  }

  pop(): SimEvent | undefined {
    const l = this.best();
    if (l) return this.shiftLane(l);
    if (this.n === 0) return undefined;
    return this.heapPop();
  }

  /** Pops the next event if it is due at or before `until`. */
  popUntil(until: number): SimEvent | undefined {
    const l = this.best();
    if (l) {
      if (l.buf[l.head]!.t > until) return undefined;
      const ev = this.shiftLane(l);
      if (ev.t > this.now) this.now = ev.t;
      return ev;
    }
    if (this.n === 0 || this.ht[0]! > until) return undefined;
    const ev = this.heapPop();
    if (ev.t > this.now) this.now = ev.t;
    return ev;
  }
}
