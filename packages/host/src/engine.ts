import type { Readable, Writable } from 'node:stream';
import type { DependencyContainer } from '@speakerd/plugin-sdk';
import {
  describeValue,
  formatToString,
  isSpeakerdError,
  type Clock,
  type TimerHandle,
  type CommandHandler,
  type Extension,
  type HostEvents,
  type Logger,
  TOKENS,
  ProtocolErrorCodes,
} from '@speakerd/plugin-sdk';
import { makeBackend, type BackendHooks, type MadeBackend } from './backends.js';
import type { AutoChoice } from './auto.js';
import { BufferBudget } from './playback/budget.js';
import { ConfigError, loadConfig, type ResolvedConfig } from './config.js';
import { createExtension, createHostContainer, pluginContainer } from './container.js';
import { attachInput } from './decoders/input.js';
import { DecoderServer, type AcceptedDecoder, type RefusalCode } from './decoders/server.js';
import type { BackendDriver, BackendReport } from './playback/driver.js';
import { Player, type PlayerEvent } from './playback/player.js';
import { Track } from './playback/track.js';
import { parseCommand, ControlChannel, type Command, type ErrorCode } from './protocol/control.js';
import { Outbox, type Event } from './protocol/outbox.js';
import { VERSION } from './version.js';

export interface EngineOptions {
  /** `--config` as given (reload re-reads the same way). */
  configArg: string | undefined;
  cwd: string;
  /** Keys laid over the configuration file at every (re)load: `speakerd play --backend/--output`. */
  overrides?: Record<string, unknown>;
  clock?: Clock;
  input: Readable;
  output: Writable;
  /** Called once the engine has stopped (control EOF, signal). */
  onStopped?: () => void;
}

/** How often the play loop refills a clock-paced backend that has not asked for another interval. */
const TICK_MS = 10;
/** Bytes in a MB (maxBufferMB). */
const MB = 1024 * 1024;
/**
 * A track starts once this much is buffered, or its decoder has finished: enough to ride out a decoder that
 * delivers in chunks of a few thousand frames only a little faster than real time.
 */
const START_THRESHOLD_MS = 250;
/** A clock-paced backend gets silence only when it holds less than this ahead of the listener. */
const SILENCE_GUARD_MS = 10;

/** A plugin command, and which backend (if any) it belongs to. */
interface CommandEntry {
  handler: CommandHandler;
  /** The backend whose command it is: it answers only while that backend is in force. */
  driver?: BackendDriver;
}

/**
 * speakerd's engine: wires the decoder socket, the control channel and the play loop around one backend, and
 * handles reloads. The play loop's own parts live in playback/, the wire formats in protocol/ and decoders/.
 */
export class Engine {
  #config: ResolvedConfig;
  #container: DependencyContainer;
  #control: ControlChannel;
  #out: Outbox;
  #decoders: DecoderServer | undefined;
  #player: Player | undefined;
  #extensions: Extension[] = [];
  #commands = new Map<string, CommandEntry>();
  #reloads: Promise<void> = Promise.resolve();
  #stopping: Promise<void> | undefined;
  #log: Logger;
  #clock: Clock;
  #ready = false;
  #choice: AutoChoice | undefined;
  /** The audio buffered across tracks that wait to play (maxBufferMB). */
  #budget: BufferBudget;
  /** Timers of connected tracks not played yet (unplayedTimeoutMs). */
  #unplayed = new Map<Track, TimerHandle>();

  constructor(
    config: ResolvedConfig,
    log: Logger,
    private readonly opts: EngineOptions,
  ) {
    this.#config = config;
    this.#log = log;
    this.#budget = new BufferBudget(config.host.maxBufferMB * MB);
    this.#container = createHostContainer(config, log, opts.clock);
    this.#clock = this.#container.resolve<Clock>(TOKENS.Clock);
    this.#control = new ControlChannel(
      opts.input,
      opts.output,
      (line) => this.#onLine(line),
      () => void this.stop('the control channel closed'),
    );
    this.#out = new Outbox((e) => this.#control.send(e));
  }

  get player(): Player | undefined {
    return this.#player;
  }

  /** Initialise the backend, listen on the decoder socket, send `ready`, start reading commands. */
  async start(): Promise<void> {
    const made = await this.#makeBackend(this.#config);
    this.#choice = made.choice;
    if (made.choice) this.#log.info({ backend: made.choice.plugin, sdp: made.choice.sdp }, made.choice.line);
    const host = this.#config.host;
    this.#player = new Player(
      this.#clock,
      this.#log.child({ component: 'player' }),
      (e) => this.#onPlayerEvent(e),
      made.driver,
      made.format,
      {
        earlyFinishMs: host.earlyFinishMs,
        reportIntervalMs: host.reportIntervalMs,
        bufferMs: host.bufferMs,
        startThresholdMs: START_THRESHOLD_MS,
        tickMs: TICK_MS,
        silenceGuardMs: SILENCE_GUARD_MS,
        volume: host.volume,
      },
      {
        backendChanged: (d) => {
          this.#installBackendCommands(d);
          // the music server hears the new backend's state when it takes over, if it is not the state it last
          // heard: a new backend whose device cannot be opened says so; one that is fine after a lost one says ok
          if (d.lastReport && d.lastReport.state !== 'ok' && d.lastReport.state === d.state)
            this.#sendBackendEvent(d.lastReport);
          else if (d.state === 'ok' && this.#reportedState !== 'ok')
            this.#sendBackendEvent({ state: 'ok', plugin: d.plugin, message: `${d.plugin}: took over (reload)` });
        },
      },
    );
    this.#installBackendCommands(made.driver);
    if (host.volume !== 100 && made.driver.hasHardwareVolume)
      await made.driver
        .setVolume(host.volume)
        .catch((err: unknown) => this.#log.warn({ err: String(err) }, 'cannot set the configured volume'));
    for (const [name, loaded] of this.#config.plugins) {
      const events: HostEvents = {
        backendState: (state, message) => this.#log.info({ plugin: name, state }, message),
        wake: () => {},
      };
      const c = pluginContainer(this.#container, loaded, this.#config.options.get(name), events, this.#config.dir);
      const ext = createExtension(c, loaded);
      if (!ext) continue;
      await ext.init?.();
      this.#extensions.push(ext);
      for (const [cmd, handler] of Object.entries(ext.commands ?? {}))
        this.#commands.set(`${name}.${cmd}`, { handler });
    }
    this.#decoders = new DecoderServer(
      { path: host.socket, headerTimeoutMs: () => this.#config.host.headerTimeoutMs },
      {
        admit: (id) => this.#admit(id),
        accepted: (d) => this.#accepted(d),
        refused: (code, message, id) => this.#refused(code, message, id),
      },
      this.#clock,
      this.#log.child({ component: 'decoders' }),
    );
    await this.#decoders.listen();
    this.#ready = true;
    this.#log.info({ socket: host.socket, backend: this.#backendName, format: formatToString(made.format) }, 'ready');
    this.#out.send({
      type: 'ready',
      protocol: 1,
      version: VERSION,
      backend: this.#backendName,
      format: { ...made.format },
      socket: host.socket,
    });
    // a state the backend reported before `ready` (its device cannot be opened) is sent right after it
    const early = made.driver.lastReport;
    if (early && early.state !== 'ok' && early.state === made.driver.state) this.#sendBackendEvent(early);
    this.#control.start();
  }

  /** Stop: close the backend, hang up on decoders, remove the socket. Idempotent. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ reason }, 'stopping');
      for (const timer of this.#unplayed.values()) this.#clock.clearTimeout(timer);
      this.#unplayed.clear();
      this.#control.close();
      try {
        await this.#decoders?.close();
      } catch (err) {
        this.#log.warn({ err }, 'closing the decoder socket failed');
      }
      await this.#player?.close();
      for (const ext of this.#extensions) await ext.close?.().catch(() => {});
      this.opts.onStopped?.();
    })();
    return this.#stopping;
  }

  /** With `backend: "auto"`: the output picked at start (or at the last reload that made a backend). */
  get autoChoice(): AutoChoice | undefined {
    return this.#choice;
  }

  get #backendName(): string {
    return this.#player?.driver.plugin ?? this.#config.backend.plugin.manifest.name;
  }

  // ------------------------------------------------------------ backends

  readonly #hooks: BackendHooks = {
    report: (driver, r) => this.#onBackendReport(driver, r),
    wake: (driver) =>
      queueMicrotask(() => {
        if (this.#player?.driver === driver) this.#player.kick();
      }),
    failed: (driver, method, retaken) => this.#player?.backendFailed(driver, method, retaken),
  };

  #makeBackend(config: ResolvedConfig): Promise<MadeBackend> {
    return makeBackend(this.#container, config, this.#clock, this.#log, this.#hooks);
  }

  #onBackendReport(driver: BackendDriver, r: BackendReport): void {
    if (!this.#ready || this.#player?.driver !== driver) return;
    this.#sendBackendEvent(r);
  }

  /** The backend state the music server last heard (`ok` until a `backend` event says otherwise). */
  #reportedState: BackendReport['state'] = 'ok';

  #sendBackendEvent(r: BackendReport): void {
    this.#reportedState = r.state;
    this.#out.send({
      type: 'backend',
      state: r.state,
      message: r.message,
      plugin: r.plugin,
      ...(r.code === undefined ? {} : { code: r.code }),
      ...(r.method === undefined ? {} : { method: r.method }),
    });
  }

  /** The commands of the backend in force: a replaced backend's commands are gone. */
  #installBackendCommands(driver: BackendDriver): void {
    for (const [key, entry] of [...this.#commands]) if (entry.driver) this.#commands.delete(key);
    for (const [cmd, handler] of Object.entries(driver.backend.commands ?? {}))
      this.#commands.set(`${driver.plugin}.${cmd}`, { handler, driver });
  }

  // ------------------------------------------------------------ decoders

  #admit(id: string): { ok: true } | { ok: false; code: RefusalCode; message: string } {
    const queue = this.#player!.queue;
    const existing = queue.get(id);
    if (existing && existing.attached)
      return { ok: false, code: 'duplicate-id', message: `a decoder for ${describeValue(id)} is already connected` };
    if (!existing && queue.size >= this.#config.host.maxTracks)
      return {
        ok: false,
        code: 'too-many-tracks',
        message: `${queue.size} tracks exist already (maxTracks ${this.#config.host.maxTracks})`,
      };
    return { ok: true };
  }

  #accepted(d: AcceptedDecoder): void {
    const player = this.#player!;
    let track = player.queue.get(d.id);
    if (!track) {
      track = new Track(d.id, 'connected', this.#config.host.bufferMs, this.#budget);
      player.add(track);
    }
    const t = track;
    this.#dropIfNotPlayed(t);
    attachInput(d, t, {
      arrived: (format) => this.#out.send({ type: 'arrived', id: d.id, format: { ...format } }),
      badWav: (message) => {
        this.#log.warn({ id: d.id }, message);
        this.#out.send({ type: 'error', code: 'bad-header', message, id: d.id });
      },
      changed: () => player.inputChanged(t),
    });
  }

  /**
   * A connected track that nobody plays within unplayedTimeoutMs is dropped, with an `error` (`not-played`), so
   * that such connections cannot hold maxTracks (and their buffers) for good.
   */
  #dropIfNotPlayed(t: Track): void {
    const ms = this.#config.host.unplayedTimeoutMs;
    if (ms === 0 || t.role !== 'connected') return;
    const timer = this.#clock.setTimeout(() => {
      this.#unplayed.delete(t);
      const player = this.#player;
      if (!player || t.role !== 'connected' || player.queue.get(t.id) !== t) return;
      player.cancel(t.id);
      this.#log.warn({ id: t.id }, `track "${t.id}" was not played within ${ms} ms of its decoder connecting: dropped`);
      this.#out.send({
        type: 'error',
        code: 'not-played',
        message: `not played within unplayedTimeoutMs (${ms} ms) of its decoder connecting: dropped`,
        id: t.id,
      });
    }, ms);
    this.#unplayed.set(t, timer);
  }

  /** `id` was played or cancelled: its not-played timer, if any, is done. */
  #played(id: string): void {
    const t = this.#player?.queue.get(id);
    const timer = t && this.#unplayed.get(t);
    if (!timer) return;
    this.#clock.clearTimeout(timer);
    this.#unplayed.delete(t);
  }

  #refused(code: RefusalCode, message: string, id: string | undefined): void {
    this.#out.send({
      type: 'error',
      code,
      message: `decoder refused: ${message}`,
      ...(id === undefined ? {} : { id }),
    });
  }

  // ------------------------------------------------------------ control

  #onPlayerEvent(e: PlayerEvent): void {
    this.#out.send(e);
  }

  #onLine(line: string): void {
    this.#out.command((answer) => {
      const parsed = parseCommand(line, (type) => this.#commands.has(type));
      if (!parsed.ok) {
        answer({
          type: 'error',
          code: parsed.code,
          message: parsed.message,
          ...(parsed.seq === undefined ? {} : { seq: parsed.seq }),
          ...(parsed.id === undefined ? {} : { id: parsed.id }),
        });
        return;
      }
      const seq = parsed.command.seq === undefined ? {} : { seq: parsed.command.seq };
      try {
        this.#command(parsed.command, answer, seq);
      } catch (err) {
        this.#log.error({ err }, 'command failed');
        answer(error('bad-command', `command failed: ${err instanceof Error ? err.message : String(err)}`, seq));
      }
    });
  }

  #command(cmd: Command, answer: (e: Event) => void, seq: { seq?: number }): void {
    const player = this.#player!;
    switch (cmd.type) {
      case 'play': {
        if (!player.queue.get(cmd.id) && player.queue.size >= this.#config.host.maxTracks) {
          const why = `${player.queue.size} tracks exist already (maxTracks ${this.#config.host.maxTracks})`;
          answer(error('busy', why, { ...seq, id: cmd.id }));
          return;
        }
        const refused = player.play(
          cmd.id,
          () => new Track(cmd.id, 'waiting', this.#config.host.bufferMs, this.#budget),
        );
        if (refused) answer(error('busy', refused.busy, { ...seq, id: cmd.id }));
        else this.#played(cmd.id);
        return;
      }
      case 'cancel':
        this.#played(cmd.id);
        answer({ type: player.cancel(cmd.id), id: cmd.id, ...seq });
        return;
      case 'pause':
        player.pause();
        return;
      case 'resume':
        player.resume();
        return;
      case 'volume': {
        const driver = player.driver;
        player.setVolume(cmd.volume);
        if (!driver.hasHardwareVolume) {
          answer({ type: 'volume', volume: cmd.volume, ...seq });
          return;
        }
        driver.setVolume(cmd.volume).then(
          () => this.#out.send({ type: 'volume', volume: cmd.volume, ...seq }),
          (err: unknown) => this.#out.send(error('backend', `volume: ${describe(err)}`, seq)),
        );
        return;
      }
      case 'status':
        answer({ type: 'status', ...this.#status(), ...seq });
        return;
      case 'reload':
        // one at a time, in order: a later reload never loses to an earlier one that took longer
        this.#reloads = this.#reloads.then(() => this.#reload(seq));
        return;
      case 'plugin': {
        const entry = this.#commands.get(cmd.name)!;
        Promise.resolve()
          .then(() => entry.handler(cmd.message))
          .then(
            (reply) => {
              if (reply) this.#out.send({ type: cmd.name, ...reply, ...seq });
            },
            (err: unknown) => {
              const code = isSpeakerdError(err) && isProtocolCode(err.code) ? (err.code as ErrorCode) : 'bad-command';
              const text = err instanceof Error ? err.message : String(err);
              // prefixed once with the command's name (a handler that names it itself is not named twice)
              const message = text.startsWith(`${cmd.name}: `) ? text : `${cmd.name}: ${text}`;
              this.#out.send(error(code, message, seq));
            },
          );
        return;
      }
    }
  }

  #status(): Record<string, unknown> {
    const player = this.#player!;
    const tracks = [...player.queue.tracks.values()].map((t) => ({
      id: t.id,
      state: t.role,
      bufferedSeconds: Math.round(t.bufferedSeconds() * 1000) / 1000,
      position: player.position(t),
      eof: t.eof,
      underruns: t.underruns,
      silenceSeconds: Math.round((t.silenceFrames * 1000) / player.format.rate) / 1000,
    }));
    return {
      backend: this.#backendName,
      backendState: player.driver.state,
      // why the output is not ok (the message of its last `backend` event)
      ...(player.driver.state !== 'ok' && player.driver.lastReport
        ? { backendMessage: player.driver.lastReport.message }
        : {}),
      format: { ...player.format },
      paused: player.paused,
      volume: player.volume,
      current: player.current?.id ?? null,
      next: player.next?.id ?? null,
      tracks,
    };
  }

  /**
   * Re-read the configuration. Transactional: a new backend (when its settings changed) is built and
   * initialised before the answer; if that fails the answer is `error` `config` and nothing changes. The new
   * backend takes over at the next safe point, after the answer.
   */
  async #reload(seq: { seq?: number }): Promise<void> {
    let config: ResolvedConfig;
    try {
      config = await loadConfig(this.opts.configArg, this.opts.cwd, this.opts.overrides, { sections: 'written' });
    } catch (err) {
      const message = err instanceof ConfigError ? err.describe() : describe(err);
      this.#log.warn({ err: message }, 'reload failed; keeping the old configuration');
      this.#out.send(error('config', message, seq));
      return;
    }
    const old = this.#config;
    const player = this.#player!;
    const backendChanged =
      config.backend.plugin.manifest.name !== old.backend.plugin.manifest.name ||
      config.backend.file !== old.backend.file ||
      JSON.stringify(config.options.get(config.backend.plugin.manifest.name)) !==
        JSON.stringify(old.options.get(old.backend.plugin.manifest.name)) ||
      JSON.stringify(config.host.format) !== JSON.stringify(old.host.format) ||
      config.auto !== old.auto ||
      (config.auto && JSON.stringify(config.options.get('rtp')) !== JSON.stringify(old.options.get('rtp')));
    let made: MadeBackend | undefined;
    if (backendChanged) {
      try {
        made = await this.#makeBackend(config);
      } catch (err) {
        const message = `the new backend cannot start: ${describe(err)}`;
        this.#log.warn({ err: describe(err) }, `reload refused; keeping the old configuration (${message})`);
        this.#out.send(error('config', message, seq));
        return;
      }
    }
    if (config.host.socket !== old.host.socket)
      this.#log.warn({ socket: config.host.socket }, 'the socket path changed; it takes effect when speakerd restarts');
    this.#config = { ...config, host: { ...config.host, socket: old.host.socket } };
    player.updateOptions({
      earlyFinishMs: config.host.earlyFinishMs,
      reportIntervalMs: config.host.reportIntervalMs,
      bufferMs: config.host.bufferMs,
    });
    if (config.host.volume !== old.host.volume) player.setVolume(config.host.volume);
    this.#budget.setCap(config.host.maxBufferMB * MB);
    this.#out.send({ type: 'reloaded', ...seq });
    if (made) {
      this.#choice = made.choice;
      if (made.choice) this.#log.info({ backend: made.choice.plugin, sdp: made.choice.sdp }, made.choice.line);
      this.#log.info('backend settings changed; the new backend takes over at the next safe point');
      player.replaceBackend(made.driver, made.format);
    }
  }
}

function error(code: ErrorCode, message: string, extra: { seq?: number; id?: string } = {}): Event {
  return { type: 'error', code, message, ...extra };
}

function describe(err: unknown): string {
  if (isSpeakerdError(err)) return err.toString();
  return err instanceof Error ? err.message : String(err);
}

function isProtocolCode(code: string): boolean {
  return (Object.values(ProtocolErrorCodes) as string[]).includes(code);
}
