import type { Clock, TimerHandle } from '@speakerd/plugin-sdk';

/** What the play loop wakes up for. */
export type Deadline = 'step' | 'report';

/**
 * The play loop's one timer. It keeps a deadline per purpose — the next `step` (fill the backend, decide
 * `finished`, announce starts) and the next periodic `report` — and arms a single clock timer for the earliest.
 *
 * The timer is only ever moved earlier, never cleared to be set later: Node keeps its own wake-up for a cleared
 * timer, so "clear and set again" after every fill costs one empty wake-up each time. When a deadline moves later
 * (a step ran early because a backend or a decoder asked for it), the pending timer fires, finds nothing due and is
 * armed for what is left.
 */
export class Scheduler {
  readonly #due: Record<Deadline, number> = { step: Infinity, report: Infinity };
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #closed = false;
  #firing = false;
  /** Timers armed so far (for tests of the wake-up count). */
  armed = 0;

  constructor(
    private readonly clock: Clock,
    private readonly onTimer: () => void,
  ) {}

  /** When `kind` is due (Infinity: not scheduled). */
  dueAt(kind: Deadline): number {
    return this.#due[kind];
  }

  /** `kind` is due at `at` unless it is due sooner already. */
  atLatest(kind: Deadline, at: number): void {
    if (at < this.#due[kind]) this.#due[kind] = at;
    this.#arm();
  }

  /** `kind` is due at `at` (Infinity: not at all), whatever it was before. */
  set(kind: Deadline, at: number): void {
    this.#due[kind] = at;
    this.#arm();
  }

  /** Is `kind` due at `now`, give or take `slack` ms? If so it is taken off (the caller does it now). */
  take(kind: Deadline, now: number, slack: number): boolean {
    if (now < this.#due[kind] - slack) return false;
    this.#due[kind] = Infinity;
    return true;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #arm(): void {
    if (this.#closed || this.#firing) return; // armed once the handler is done, for what is left then
    const due = Math.min(this.#due.step, this.#due.report);
    if (due === Infinity) return;
    if (this.#timer && this.#timerAt <= due + 0.5) return; // fires in time; finds out then what is due
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    const now = this.clock.now();
    this.#timerAt = Math.max(due, now);
    this.armed++;
    this.#timer = this.clock.setTimeout(this.#fire, Math.max(0, due - now));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#closed) return;
    this.#firing = true;
    try {
      this.onTimer();
    } finally {
      this.#firing = false;
    }
    this.#arm();
  };
}
