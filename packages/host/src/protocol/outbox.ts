/** An event line as the control channel sends it. */
export type Event = Record<string, unknown>;

/**
 * The order of events on the control channel. While a command is handled, the direct answer to it goes out at
 * once and every other event it causes (the next track's `playing` after a `cancel`, a `finished` that falls due
 * in the fill a `play` triggers) is held and sent right after, in the order it was made. So the answer to a
 * command always comes before any event it causes (docs/PROTOCOL.md, "Order").
 */
export class Outbox {
  #held: Event[] | undefined;

  constructor(private readonly write: (event: Event) => void) {}

  /** Send an event (held while a command is being handled). */
  send(event: Event): void {
    if (this.#held) this.#held.push(event);
    else this.write(event);
  }

  /** Handle one command: `answer` sends its direct answer at once; everything else sent meanwhile follows. */
  command(handle: (answer: (event: Event) => void) => void): void {
    if (this.#held) return handle((e) => this.send(e)); // not nested in practice; keep the order anyway
    this.#held = [];
    try {
      handle((e) => this.write(e));
    } finally {
      const held = this.#held;
      this.#held = undefined;
      for (const e of held) this.write(e);
    }
  }
}
