/**
 * Time as speakerd's play loop and clock-paced backends see it. It is injected (token {@link TOKENS.Clock}) so
 * that the same code runs on the real clock in production and on a {@link VirtualClock} in tests.
 */
export interface Clock {
  /** Monotonic time in milliseconds (fractional). Never goes backwards. */
  now(): number;
  /** Wall-clock time in milliseconds since the Unix epoch (for RTCP's NTP timestamps, logs). */
  wallNow(): number;
  /** Call `fn` once, `ms` milliseconds from now (at the earliest). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancel a timer; cancelling a fired or cancelled timer does nothing. */
  clearTimeout(handle: TimerHandle): void;
}

/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export interface TimerHandle {
  readonly __timer: unique symbol;
}

/** The real clock: `performance.now()` and Node's timers. */
export class RealClock implements Clock {
  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    return t as unknown as TimerHandle;
  }
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  }
}

interface VirtualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to. Timers fire in deadline order (ties in creation order) as
 * {@link VirtualClock.advance} passes them, with `now()` equal to each timer's deadline while it runs.
 */
export class VirtualClock implements Clock {
  #now: number;
  #wallOffset: number;
  #seq = 0;
  #timers: VirtualTimer[] = [];

  constructor(start = 0, wallStart = Date.UTC(2026, 0, 1)) {
    this.#now = start;
    this.#wallOffset = wallStart - start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#now + this.#wallOffset;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: VirtualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    // keep sorted by (at, seq): insert after all timers due no later
    let i = this.#timers.length;
    while (i > 0 && this.#timers[i - 1]!.at > timer.at) i--;
    this.#timers.splice(i, 0, timer);
    return timer as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    const timer = handle as unknown as VirtualTimer;
    timer.cancelled = true;
    const i = this.#timers.indexOf(timer);
    if (i >= 0) this.#timers.splice(i, 1);
  }

  /** Number of timers waiting. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Deadline of the next timer, or undefined. */
  nextDeadline(): number | undefined {
    return this.#timers[0]?.at;
  }

  /** Move time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    this.advanceTo(this.#now + ms);
  }

  /** Move time forward to `t` (no-op if `t` is not later than now), firing timers on the way. */
  advanceTo(t: number): void {
    for (;;) {
      const next = this.#timers[0];
      if (!next || next.at > t) break;
      this.#timers.shift();
      if (next.at > this.#now) this.#now = next.at;
      next.fn();
    }
    if (t > this.#now) this.#now = t;
  }

  /**
   * Jump the clock by `ms` without firing anything on the way (a suspended machine, a stalled process); timers
   * that are now overdue fire on the next {@link advance}.
   */
  jump(ms: number): void {
    this.#now += ms;
  }
}
