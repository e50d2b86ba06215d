import type { SampleFormat } from './format.js';

/**
 * How a backend is fed.
 * - `clock`: the backend has no clock of its own (a pipe, the network). It is fed at real time plus a small lead,
 *   and reports in {@link Backend.writable} how much it may take now (see {@link RealtimePacer}). While a played
 *   track has no audio, the host writes silence — but only as much as keeps what the backend holds ahead of the
 *   listener ({@link Backend.delay}) from running out, never while it still holds audio.
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
 * the command's type unless given, and `seq`), or nothing for no reply. Throw a {@link SpeakerdError} to answer
 * with an `error` event: its code is sent as is when it is one of the protocol's codes
 * ({@link ProtocolErrorCodes}), else as `bad-command`; its message is sent once, prefixed with the command's name.
 */
export type CommandHandler = (
  message: CommandMessage,
) => void | Record<string, unknown> | Promise<void | Record<string, unknown>>;

/**
 * An output backend. The host owns buffering, conversion and timing; a backend only takes frames in the output
 * format and makes them audible.
 *
 * ## Rules the host keeps
 * - **One call at a time.** The host never calls a method while another one is running: it waits for a returned
 *   promise to settle before it calls anything else (`writable()` included). Nothing here may block the event loop.
 * - **Lifecycle.** `init()` once → `negotiate()` → `configure(format)` → (`activate(format)` → `writable()`/
 *   `write()`…/`endFill()` → `idle()`)… → `close()`. `activate` may also be called while active, with another
 *   format, between tracks ({@link formatFor}), and again after `idle()` or after a failure. After a reload that
 *   changed the backend's options a new instance is made and this one is closed.
 * - **Queries are queries.** `writable()`, `delay()`, `negotiate()` and `formatFor()` only answer: they do not
 *   send, open, spawn or write files. Work that must happen once the host has written what it will write for now
 *   belongs in {@link endFill}; work on the agreed format (describing a stream, checking a device) in
 *   {@link configure}.
 * - **Returns are checked.** Frame counts are whole numbers (`Number.isInteger`) ≥ 0; `write()` returns at most the
 *   frames it was offered. A return that breaks a rule is a contract violation
 *   (`SPEAKERD_ERR_BACKEND_CONTRACT`, naming the plugin and the method): the host treats it as a failure.
 * - **Failures.** A method that throws, a promise that rejects, or a contract violation while playing is a backend
 *   failure. The host reports it to the music server (`backend` `lost`, with the plugin, the method and the
 *   message), asks {@link flush} (if implemented) for what it still holds — those frames are played again — then
 *   calls `idle()` (errors of both ignored), keeps every track buffered, and calls `activate()` again after a
 *   back-off (1 s, doubling up to 30 s); it reports `ok` when a `write()` is accepted again. What the backend held
 *   and could not give back is counted as played. A throw from
 *   `close()` or `idle()` is logged and otherwise ignored. Nothing a backend does can stop speakerd.
 * - **Errors.** Throw a {@link SpeakerdError} with a stable code; the host stamps every error with the plugin's name
 *   and the method.
 */
export interface Backend {
  /** How the backend is fed; see {@link Pacing}. Read once, when the backend is made. */
  readonly pacing: Pacing;

  /**
   * How often, in ms, the host should offer frames when the backend has not called {@link HostEvents.wake}
   * (default 10). A backend that schedules its own sends can ask for less frequent offers and call `wake()` when
   * it wants more, to save wake-ups; it must then hold at least `tickMs` of audio ahead, or call `wake()` before
   * what it holds runs out. The host still fills sooner when it must: a `play`, new input for a track that ran
   * dry, a `finished` falling due, or what the backend holds running low while a track has no audio.
   */
  readonly tickMs?: number;

  /**
   * The format the backend will take, given the configured output format. Return it unchanged when it can be
   * played as is; return a different one when the backend needs it (RTP sends big-endian: s16le → s16be). The
   * host converts every track to what this returns. Called once, after {@link init}. A query: it must not open
   * devices or write files (do that in {@link configure}). Throw a SpeakerdError when no usable format exists:
   * speakerd then does not start (or a reload is refused), with that message.
   */
  negotiate?(requested: SampleFormat): SampleFormat;

  /**
   * The output format is agreed (what {@link negotiate} returned): check that it can be played, describe the
   * stream (RTP writes its SDP file here). Called once, after `negotiate`, before `ready` is sent and before
   * anything is activated. Throwing stops start-up (or refuses the reload) with the error's message. Makes no
   * sound.
   */
  configure?(format: SampleFormat): void | Promise<void>;

  /**
   * Per-track output format, for backends that can play tracks in their own format (ALSA's `format: "auto"`, for
   * bit-perfect output of a library with mixed rates). Given a track's format, return the format to play it in,
   * or undefined to convert it to the negotiated output format. A query (it must not open the device). When the
   * answer differs from the format the backend is active in, the host lets everything already handed out become
   * audible, then calls {@link activate} with the new format before the track's first frame (so the switch is not
   * gapless); if that activation throws, the host activates the negotiated format again and converts the track.
   */
  formatFor?(track: SampleFormat): SampleFormat | undefined;

  /** Once, before anything else: open sockets, check the device exists. Spawn nothing loud. Throwing stops start-up. */
  init?(): Promise<void>;

  /**
   * Get ready to make sound in `format` (open the device, spawn the command, start pacing from now). Called when
   * something is about to play: at the first track, after {@link idle}, after a failure (again and again, with a
   * back-off, until it resolves), and with another format between tracks. Rejecting is a failure (see the rules).
   */
  activate(format: SampleFormat): Promise<void>;

  /**
   * Frames the backend can take right now without blocking: a whole number ≥ 0. A query. Called at the start of
   * each fill, only while active and not paused by the host's own accounting (it may still be called while the
   * backend is paused, to let a `pause: "silence"` backend keep its stream going: return 0 then).
   */
  writable(): number;

  /**
   * Take frames: `data` holds whole frames in the active format, never more than the last {@link writable} said.
   * Returns how many frames were accepted: a whole number from 0 to the frames offered (a short write is fine; the
   * host offers the rest at once while the backend keeps taking some, and returns when it takes none). Must not
   * block, and must not keep a reference to `data` beyond the call unless it copies: the host reuses its buffers.
   */
  write(data: Uint8Array): number;

  /**
   * The host has finished a fill: it has written everything it will write for now (possibly nothing). Called once
   * after every fill while active, also when paused. The place to hand a batch to a sender thread, or to send what
   * `write` queued. Optional.
   */
  endFill?(): void;

  /**
   * Frames accepted but not yet audible (queued in a pipe, a device buffer, a send queue): a whole number ≥ 0.
   * Default 0. The host subtracts it for the audible position, and counts it when it decides that a track's end is
   * within `earlyFinishMs` of being audible — a backend with a deep queue that leaves this out makes `finished`
   * arrive too early. A query.
   */
  delay?(): number;

  /**
   * Drop what is queued and not yet audible, for a fast pause. Returns how many frames of the most recently
   * written ones were dropped (a whole number ≥ 0, at most what was written and not yet audible); the host plays
   * those again after resume. Backends that cannot take audio back (a pipe, packets already sent) do not
   * implement this.
   */
  flush?(): number;

  /**
   * True when {@link flush} only takes back audio that has not left for the listener and the stream goes on
   * without a gap if the host refills at once (a send queue, unlike a device that stops on drop). The host then
   * also uses flush to make a `volume` change heard at once rather than after the queue has played out.
   */
  readonly flushIsSeamless?: boolean;

  /**
   * Output stops (the host stops writing). Optional hook: e.g. start sending silence, or nothing. The host calls
   * `pause()` and `resume()` in turn: `pause()` once when the pause reaches the current track, `resume()` only after
   * a `pause()`. A backend stays paused through `idle()` and `activate()` until `resume()`.
   */
  pause?(): void | Promise<void>;

  /** Output continues after {@link pause}; clock-paced backends restart their pacing from now. */
  resume?(): void | Promise<void>;

  /**
   * Nothing plays for now: release the device, stop the command. `activate` is called before the next sound.
   * Also called after a failure, before the back-off; then whatever it throws is ignored.
   */
  idle?(): Promise<void>;

  /** Stop for good; flush what must be flushed (RTP sends BYE). Called once; nothing is called after it. */
  close(): Promise<void>;

  /**
   * Hardware volume, 0..100. Implement only when configured with a hardware mixer; the host then hands the
   * `volume` command to this method instead of scaling samples. A throw or rejection answers that `volume`
   * command with an `error` (code `backend`); it is not a failure of the output.
   */
  setVolume?: ((volume: number) => void | Promise<void>) | undefined;

  /**
   * Extra control-channel commands, by short name: `add-recipient` is reachable as `rtp.add-recipient`. They exist
   * while this instance is the backend in force: after a reload replaced it, they answer `unknown-command`.
   */
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
  /**
   * The output failed or came back; sent to the music server as a `backend` event. The host sends an event only
   * when the state changes, so a backend may report the same state again without flooding the music server.
   */
  backendState(state: BackendState, message: string): void;
  /** The backend can take more now: the host fills it without waiting for its next tick. */
  wake(): void;
}
