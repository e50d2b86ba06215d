import type { Readable, Writable } from 'node:stream';
import type { DependencyContainer } from 'tsyringe';
import {
  formatToString,
  isSpeakerdError,
  type Backend,
  type BackendState,
  type Clock,
  type CommandHandler,
  type Extension,
  type HostEvents,
  type Logger,
  type SampleFormat,
  TOKENS,
  ProtocolErrorCodes,
} from '@speakerd/plugin-sdk';
import { ConfigError, loadConfig, type ResolvedConfig } from '../config.js';
import { createBackend, createExtension, createHostContainer, pluginContainer } from '../container.js';
import { VERSION } from '../version.js';
import { parseCommand, ControlChannel, type Command, type ErrorCode } from './control.js';
import { DecoderServer, type AcceptedDecoder, type RefusalCode } from './decoders.js';
import { Player, type BackendSlot, type PlayerEvent } from './player.js';
import { Track } from './track.js';

export interface EngineOptions {
  /** `--config` as given (reload re-reads the same way). */
  configArg: string | undefined;
  cwd: string;
  clock?: Clock;
  input: Readable;
  output: Writable;
  /** Called once the engine has stopped (control EOF, signal). */
  onStopped?: () => void;
}

/** How often the play loop refills a clock-paced backend. */
const TICK_MS = 10;
/** A track starts once this much is buffered, or its decoder has finished. */
const START_THRESHOLD_MS = 50;

/**
 * speakerd's engine: the decoder socket, the control channel and the play loop around one backend.
 */
export class Engine {
  #config: ResolvedConfig;
  #container: DependencyContainer;
  #control: ControlChannel;
  #decoders: DecoderServer | undefined;
  #player: Player | undefined;
  #extensions: Extension[] = [];
  #commands = new Map<string, CommandHandler>();
  #backendState: BackendState = 'ok';
  #stopping: Promise<void> | undefined;
  #log: Logger;
  #clock: Clock;
  #ready = false;

  constructor(
    config: ResolvedConfig,
    log: Logger,
    private readonly opts: EngineOptions,
  ) {
    this.#config = config;
    this.#log = log;
    this.#container = createHostContainer(config, log, opts.clock);
    this.#clock = this.#container.resolve<Clock>(TOKENS.Clock);
    this.#control = new ControlChannel(
      opts.input,
      opts.output,
      (line) => this.#onLine(line),
      () => void this.stop('the control channel closed'),
    );
  }

  get player(): Player | undefined {
    return this.#player;
  }

  /** Initialise the backend, listen on the decoder socket, send `ready`, start reading commands. */
  async start(): Promise<void> {
    const slot = await this.#makeBackend(this.#config);
    this.#player = new Player(
      this.#clock,
      this.#log.child({ component: 'player' }),
      (e) => this.#onPlayerEvent(e),
      (message) => this.#setBackendState('lost', message),
      slot,
      {
        earlyFinishMs: this.#config.host.earlyFinishMs,
        reportIntervalMs: this.#config.host.reportIntervalMs,
        bufferMs: this.#config.host.bufferMs,
        startThresholdMs: START_THRESHOLD_MS,
        tickMs: TICK_MS,
        volume: this.#config.host.volume,
      },
    );
    if (this.#config.host.volume !== 100 && slot.backend.setVolume)
      await slot.backend.setVolume(this.#config.host.volume);
    for (const [name, loaded] of this.#config.plugins) {
      const c = pluginContainer(
        this.#container,
        loaded,
        this.#config.options.get(name),
        this.#events(name),
        this.#config.dir,
      );
      const ext = createExtension(c, loaded);
      if (!ext) continue;
      await ext.init?.();
      this.#extensions.push(ext);
      for (const [cmd, h] of Object.entries(ext.commands ?? {})) this.#commands.set(`${name}.${cmd}`, h);
    }
    this.#decoders = new DecoderServer(
      { path: this.#config.host.socket, headerTimeoutMs: () => this.#config.host.headerTimeoutMs },
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
    this.#log.info(
      { socket: this.#config.host.socket, backend: this.#backendName, format: formatToString(slot.format) },
      'ready',
    );
    this.#control.send({
      type: 'ready',
      protocol: 1,
      version: VERSION,
      backend: this.#backendName,
      format: { ...slot.format },
    });
    this.#control.start();
  }

  /** Stop: close the backend, hang up on decoders, remove the socket. Idempotent. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ reason }, 'stopping');
      this.#control.close();
      try {
        await this.#decoders?.close();
      } catch (err) {
        this.#log.warn({ err }, 'closing the decoder socket failed');
      }
      try {
        await this.#player?.close();
      } catch (err) {
        this.#log.warn({ err }, 'closing the backend failed');
      }
      for (const ext of this.#extensions) await ext.close?.().catch(() => {});
      this.opts.onStopped?.();
    })();
    return this.#stopping;
  }

  get #backendName(): string {
    return this.#config.backend.plugin.manifest.name;
  }

  #events(plugin: string): HostEvents {
    return {
      backendState: (state, message) => this.#setBackendState(state, `${plugin}: ${message}`),
      wake: () => queueMicrotask(() => this.#player?.kick()),
    };
  }

  #setBackendState(state: BackendState, message: string): void {
    this.#backendState = state;
    if (this.#ready) this.#control.send({ type: 'backend', state, message });
  }

  async #makeBackend(config: ResolvedConfig): Promise<BackendSlot> {
    const name = config.backend.plugin.manifest.name;
    const c = pluginContainer(
      this.#container,
      config.backend,
      config.options.get(name),
      this.#events(name),
      config.dir,
    );
    const backend: Backend = createBackend(c, config.backend);
    await backend.init?.();
    const format: SampleFormat = backend.negotiate ? backend.negotiate(config.host.format) : config.host.format;
    for (const key of [...this.#commands.keys()])
      if (key.startsWith(`${this.#backendName}.`)) this.#commands.delete(key);
    for (const [cmd, h] of Object.entries(backend.commands ?? {})) this.#commands.set(`${name}.${cmd}`, h);
    return { backend, format };
  }

  // ------------------------------------------------------------ decoders

  #admit(id: string): { ok: true } | { ok: false; code: RefusalCode; message: string } {
    const player = this.#player!;
    const existing = player.tracks.get(id);
    if (existing && (existing.input || existing.role === 'connected'))
      return { ok: false, code: 'duplicate-id', message: `a decoder for ${JSON.stringify(id)} is already connected` };
    if (!existing && player.tracks.size >= this.#config.host.maxTracks)
      return {
        ok: false,
        code: 'too-many-tracks',
        message: `${player.tracks.size} tracks exist already (maxTracks ${this.#config.host.maxTracks})`,
      };
    return { ok: true };
  }

  #accepted(d: AcceptedDecoder): void {
    const player = this.#player!;
    let track = player.tracks.get(d.id);
    if (!track) {
      track = new Track(d.id, 'connected', this.#config.host.bufferMs);
      player.tracks.set(d.id, track);
    }
    const t = track;
    const socket = d.socket;
    let left = d.dataBytes;
    t.setInput(d.format, {
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      destroy: () => socket.destroy(),
    });
    this.#control.send({ type: 'arrived', id: d.id, format: { ...d.format } });
    const take = (chunk: Buffer) => {
      if (left !== undefined) {
        if (left <= 0) return;
        if (chunk.length > left) chunk = chunk.subarray(0, left);
        left -= chunk.length;
      }
      t.pushInput(chunk);
      player.inputChanged(t);
    };
    if (d.initial.length > 0) take(d.initial);
    const end = () => {
      if (t.eof) return;
      t.endInput();
      player.inputChanged(t);
    };
    socket.on('data', take);
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  #refused(code: RefusalCode, message: string, id: string | undefined): void {
    this.#control.send({
      type: 'error',
      code,
      message: `decoder refused: ${message}`,
      ...(id === undefined ? {} : { id }),
    });
  }

  // ------------------------------------------------------------ control

  #onPlayerEvent(e: PlayerEvent): void {
    this.#control.send(e);
  }

  #error(code: ErrorCode, message: string, extra: { seq?: number; id?: string } = {}): void {
    this.#control.send({ type: 'error', code, message, ...extra });
  }

  #onLine(line: string): void {
    const parsed = parseCommand(line, (type) => this.#commands.has(type));
    if (!parsed.ok) {
      this.#error(parsed.code, parsed.message, {
        ...(parsed.seq === undefined ? {} : { seq: parsed.seq }),
        ...(parsed.id === undefined ? {} : { id: parsed.id }),
      });
      return;
    }
    try {
      this.#command(parsed.command);
    } catch (err) {
      this.#log.error({ err }, 'command failed');
      const seq = parsed.command.seq;
      this.#error(
        'bad-command',
        `command failed: ${err instanceof Error ? err.message : String(err)}`,
        seq === undefined ? {} : { seq },
      );
    }
  }

  #command(cmd: Command): void {
    const player = this.#player!;
    const seq = cmd.seq === undefined ? {} : { seq: cmd.seq };
    switch (cmd.type) {
      case 'play': {
        const existing = player.tracks.get(cmd.id);
        if (!existing && player.tracks.size >= this.#config.host.maxTracks) {
          this.#error('busy', `${player.tracks.size} tracks exist already (maxTracks ${this.#config.host.maxTracks})`, {
            ...seq,
            id: cmd.id,
          });
          return;
        }
        const ok = player.play(cmd.id, () => new Track(cmd.id, 'waiting', this.#config.host.bufferMs));
        if (!ok) {
          const why =
            existing && (existing.role === 'current' || existing.role === 'next' || existing.role === 'waiting')
              ? `${JSON.stringify(cmd.id)} is already ${existing.role === 'waiting' ? 'queued' : existing.role}`
              : 'a next track is already set';
          this.#error('busy', why, { ...seq, id: cmd.id });
        }
        return;
      }
      case 'cancel': {
        const answer = player.cancel(cmd.id);
        this.#control.send({ type: answer, id: cmd.id, ...seq });
        return;
      }
      case 'pause':
        player.pause();
        return;
      case 'resume':
        player.resume();
        return;
      case 'volume': {
        player.setVolume(cmd.volume);
        const hw = player.backend.setVolume;
        if (hw) {
          Promise.resolve(hw.call(player.backend, cmd.volume)).then(
            () => this.#control.send({ type: 'volume', volume: cmd.volume, ...seq }),
            (err: unknown) =>
              this.#error('backend', `volume: ${err instanceof Error ? err.message : String(err)}`, seq),
          );
          return;
        }
        this.#control.send({ type: 'volume', volume: cmd.volume, ...seq });
        return;
      }
      case 'status':
        this.#control.send({ type: 'status', ...this.#status(), ...seq });
        return;
      case 'reload':
        void this.#reload(seq);
        return;
      case 'plugin': {
        const handler = this.#commands.get(cmd.name)!;
        Promise.resolve()
          .then(() => handler(cmd.message))
          .then(
            (reply) => {
              if (reply) this.#control.send({ type: cmd.name, ...reply, ...seq });
            },
            (err: unknown) => {
              const code = isSpeakerdError(err) && isProtocolCode(err.code) ? (err.code as ErrorCode) : 'bad-command';
              this.#error(code, `${cmd.name}: ${err instanceof Error ? err.message : String(err)}`, seq);
            },
          );
        return;
      }
    }
  }

  #status(): Record<string, unknown> {
    const player = this.#player!;
    const tracks = [...player.tracks.values()].map((t) => ({
      id: t.id,
      state: t.role,
      bufferedSeconds: Math.round(t.bufferedSeconds() * 1000) / 1000,
      position: player.position(t),
      eof: t.eof,
    }));
    return {
      backend: this.#backendName,
      backendState: this.#backendState,
      format: { ...player.format },
      paused: player.paused,
      volume: player.volume,
      current: player.current?.id ?? null,
      next: player.next?.id ?? null,
      tracks,
    };
  }

  async #reload(seq: { seq?: number }): Promise<void> {
    let config: ResolvedConfig;
    try {
      config = await loadConfig(this.opts.configArg, this.opts.cwd);
    } catch (err) {
      const message = err instanceof ConfigError ? err.describe() : err instanceof Error ? err.message : String(err);
      this.#log.warn({ err: message }, 'reload failed; keeping the old configuration');
      this.#error('config', message, seq);
      return;
    }
    const old = this.#config;
    const player = this.#player!;
    const backendChanged =
      config.backend.plugin.manifest.name !== old.backend.plugin.manifest.name ||
      config.backend.file !== old.backend.file ||
      JSON.stringify(config.options.get(config.backend.plugin.manifest.name)) !==
        JSON.stringify(old.options.get(old.backend.plugin.manifest.name)) ||
      JSON.stringify(config.host.format) !== JSON.stringify(old.host.format);
    if (config.host.socket !== old.host.socket)
      this.#log.warn({ socket: config.host.socket }, 'the socket path changed; it takes effect when speakerd restarts');
    this.#config = { ...config, host: { ...config.host, socket: old.host.socket } };
    player.updateOptions({
      earlyFinishMs: config.host.earlyFinishMs,
      reportIntervalMs: config.host.reportIntervalMs,
      bufferMs: config.host.bufferMs,
    });
    if (config.host.volume !== old.host.volume) player.setVolume(config.host.volume);
    if (backendChanged) {
      this.#log.info('backend settings changed; restarting it at the next safe point');
      player.replaceBackend(() => this.#makeBackend(config));
    }
    this.#control.send({ type: 'reloaded', ...seq });
  }
}

function isProtocolCode(code: string): boolean {
  return (Object.values(ProtocolErrorCodes) as string[]).includes(code);
}
