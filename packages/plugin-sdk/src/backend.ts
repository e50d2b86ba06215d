import type { SampleFormat } from './format.js';

/**
 * How a backend is fed.
 * - `clock`: the backend has no clock of its own (a pipe, the network). It is fed at real time plus a small lead,
 *   and reports in {@link Backend.writable} how much it may take now (see {@link RealtimePacer}). While a played
 *   track has no audio yet, the host feeds it silence so the stream keeps its timing.
 * - `device`: the backend's hardware drains at its own pace (ALSA). It takes what fits in its buffer and calls
 *   {@link HostEvents.wake} when there is room again.
 */
export type Pacing = 'clock' | 'device';

/** State of the output as reported to the music server in `backend` events. */
export type BackendState = 'ok' | 'lost' | 'recovering';

/** What a plugin command handler gets: the whole control-channel object (`type`, `seq` and its own fields). */
export type CommandMessage = Readonly<Record<string, unknown>>;

/**
 * A plugin command such as `rtp.add-recipient`. Return the fields of the reply event (the host adds `type` =
 * the command's type unless given, and `seq`), or nothing for a plain `{"type":"ok"}`-less success (no reply).
 * Throw a {@link SpeakerdError} to answer with an `error` event (its code is sent as `bad-command` unless it is
 * one of the protocol's codes).
 */
export type CommandHandler = (
  message: CommandMessage,
) => void | Record<string, unknown> | Promise<void | Record<string, unknown>>;

/**
 * An output backend. The host owns buffering, conversion and timing; a backend only takes frames in the output
 * format and makes them audible. Every method must return promptly: nothing here may block the event loop.
 *
 * Lifecycle: `init` once → (`activate(format)` → `write`… → `idle`)… → `close`. After a reload that changed the
 * backend's options the instance is closed and a new one is made.
 */
export interface Backend {
  /** How the backend is fed; see {@link Pacing}. */
  readonly pacing: Pacing;

  /**
   * How often, in ms, the host should offer frames when the backend has not called {@link HostEvents.wake}
   * (default 10). A backend that schedules its own sends can ask for less frequent offers and call `wake()` when
   * it wants more, to save wake-ups.
   */
  readonly tickMs?: number;

  /**
   * The format the backend will take, given the configured output format. Return it unchanged when it can be
   * played as is; return a different one when the backend needs it (RTP sends big-endian: s16le → s16be). The
   * host converts every track to what this returns. Throw a SpeakerdError when no usable format exists.
   */
  negotiate?(requested: SampleFormat): SampleFormat;

  /**
   * Per-track output format, for backends that can play tracks in their own format (ALSA's `format: "auto"`, for
   * bit-perfect output of a library with mixed rates). Given a track's format, return the format to play it in,
   * or undefined to convert it to the negotiated output format. When the answer differs from the format the
   * backend is active in, the host lets everything already handed out become audible, then calls
   * {@link activate} with the new format before the track's first frame (so the switch is not gapless).
   */
  formatFor?(track: SampleFormat): SampleFormat | undefined;

  /** Once, before anything else: open sockets, check the device exists. Spawn nothing loud. */
  init?(): Promise<void>;

  /** Get ready to make sound in `format` (open the device, spawn the command, start pacing from now). */
  activate(format: SampleFormat): Promise<void>;

  /** Frames the backend can take right now without blocking. */
  writable(): number;

  /**
   * Take frames: `data` holds whole frames in the active format. Returns how many frames were accepted (fewer
   * than offered when full). Must not block and must not keep a reference to `data` beyond the call unless it
   * copies: the host reuses its buffers.
   */
  write(data: Uint8Array): number;

  /** Frames accepted but not yet audible (queued in a pipe, a device buffer, a send queue). Default 0. */
  delay?(): number;

  /**
   * Drop what is queued and not yet audible, for a fast pause. Returns how many frames of the most recently
   * written ones were dropped; the host plays those again after resume. Backends that cannot take audio back
   * (a pipe, packets already sent) do not implement this.
   */
  flush?(): number;

  /**
   * True when {@link flush} only takes back audio that has not left for the listener and the stream goes on
   * without a gap if the host refills at once (a send queue, unlike a device that stops on drop). The host then
   * also uses flush to make a `volume` change heard at once rather than after the queue has played out.
   */
  readonly flushIsSeamless?: boolean;

  /** Output stops (the host stops writing). Optional hook: e.g. start sending silence, or nothing. */
  pause?(): void | Promise<void>;

  /** Output continues after {@link pause}; clock-paced backends restart their pacing from now. */
  resume?(): void | Promise<void>;

  /** Nothing plays for now: release the device, stop the command. `activate` is called before the next sound. */
  idle?(): Promise<void>;

  /** Stop for good; flush what must be flushed (RTP sends BYE). */
  close(): Promise<void>;

  /**
   * Hardware volume, 0..100. Implement only when configured with a hardware mixer; the host then hands the
   * `volume` command to this method instead of scaling samples.
   */
  setVolume?: ((volume: number) => void | Promise<void>) | undefined;

  /** Extra control-channel commands, by short name: `add-recipient` is reachable as `rtp.add-recipient`. */
  readonly commands?: Readonly<Record<string, CommandHandler>>;
}

/** A constructor for a backend, resolved through the host's container (use `@inject` on every parameter). */
export type BackendClass = new (...args: never[]) => Backend;

/** A plugin service that is not an output (it only adds commands); made for every plugin listed in `plugins`. */
export interface Extension {
  init?(): Promise<void>;
  close?(): Promise<void>;
  readonly commands?: Readonly<Record<string, CommandHandler>>;
}

/** A constructor for an {@link Extension}. */
export type ExtensionClass = new (...args: never[]) => Extension;

/** What the host offers a plugin to report with (token {@link TOKENS.Events}). */
export interface HostEvents {
  /** The output failed or came back; sent to the music server as a `backend` event. */
  backendState(state: BackendState, message: string): void;
  /** The backend can take more now: the host fills it without waiting for its next tick. */
  wake(): void;
}
