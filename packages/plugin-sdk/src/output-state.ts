import type { BackendState, HostEvents } from './backend.js';

/**
 * A backend's output state as it reports it (`TOKENS.Events`' `backendState`): `lost` when the output failed,
 * `ok` when it came back, `recovering` while it is being retried. Each method reports a change once and swallows
 * a repeat (a send error on every packet is one `lost`), and says whether it reported; `state` is what was last
 * reported, for the backend's own decisions (retry only while lost). Every built-in backend keeps its state in
 * one of these.
 */
export class OutputState {
  #state: BackendState = 'ok';

  constructor(private readonly events: Pick<HostEvents, 'backendState'>) {}

  get state(): BackendState {
    return this.#state;
  }

  /** The output failed: report `lost` with why, unless it already is. */
  lost(message: string): boolean {
    return this.#set('lost', message);
  }

  /** The output works (again): report `ok`, unless it already is. */
  ok(message: string): boolean {
    return this.#set('ok', message);
  }

  /** The output is being retried: report `recovering`, unless it already is. */
  recovering(message: string): boolean {
    return this.#set('recovering', message);
  }

  /** Report `state` (whichever it is), unless it already is. */
  report(state: BackendState, message: string): boolean {
    return this.#set(state, message);
  }

  #set(state: BackendState, message: string): boolean {
    if (this.#state === state) return false;
    this.#state = state;
    this.events.backendState(state, message);
    return true;
  }
}
