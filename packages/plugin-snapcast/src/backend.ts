import { resolve as resolvePath } from 'node:path';
import {
  OutputState,
  RateLimitedLog,
  RealtimePacer,
  SpeakerdError,
  TOKENS,
  bytesPerFrame,
  formatToString,
  framesForMs,
  framesIn,
  inject,
  injectable,
  msForFrames,
  sameFormat,
  silence,
  type Backend,
  type Clock,
  type CommandHandler,
  type HostEvents,
  type Logger,
  type PluginContext,
  type SampleFormat,
  type TimerHandle,
} from '@speakerd/plugin-sdk';
import { ControlError, getStreams, type SnapStream } from './control.js';
import { PLUGIN, SnapcastErrorCodes, parseSnapFormat, snapFormatString } from './format.js';
import { ConnectLink, ListenLink, PipeLink, type Link } from './link.js';
import { SNAPSERVER_DEFAULTS, type SnapcastOptions } from './options.js';

/** A link that stayed up this long starts the reconnection back-off from its minimum again. */
export const STABLE_AFTER_MS = 10_000;
/** A link never up yet is reported lost once playback has waited this long for it. */
export const FIRST_CONNECT_GRACE_MS = 2000;

/** What the stream's settings in snapserver say, as far as they were read. */
interface StreamSettings {
  readonly format: SampleFormat;
  readonly chunkMs: number;
  /** Where the format came from, for logs. */
  readonly from: string;
}

/**
 * The `snapcast` backend: feeds one snapserver stream (a tcp source, either side listening, or a pipe source) in
 * the stream's own sample format, in whole chunks of the stream's chunk_ms, at real time plus `leadMs`. Once
 * audio has started, the stream never stops while paused, between tracks or for `idleSilenceMs` after playback
 * went idle: what the host does not give is filled with silence, so snapserver never sees its input run dry (it
 * marks the stream idle and starts it afresh, dropping what it held and jumping). `delay()` counts snapserver's
 * buffer, so positions and `finished` are what the rooms hear. See the package README.
 */
@injectable()
export class SnapcastBackend implements Backend {
  readonly pacing = 'clock' as const;
  readonly commands: Readonly<Record<string, CommandHandler>>;

  #settings: StreamSettings | undefined;
  #format: SampleFormat | undefined;
  #bpf = 1;
  #chunkFrames = 0;
  #chunkBytes = 0;
  #leadFrames = 0;
  #bufferFrames = 0;
  #pacer: RealtimePacer | undefined;
  /** The chunk being filled (a fresh zeroed buffer each time, handed to the socket once full). */
  #chunk: Uint8Array = new Uint8Array(0);
  #fill = 0;
  /** A chunk of silence, shared and never written to. */
  #silentChunk: Uint8Array = new Uint8Array(0);
  /** Frames of silence written since the host's last frame (delay() counts only the host's frames). */
  #silenceSinceHost = 0;

  /** Between activate() and idle(). */
  #hostActive = false;
  #paused = false;
  #closed = false;
  #idleSince: number | undefined;
  /** How far ahead of real time the host's audio was when pause() came, in frames. */
  #pauseAhead = 0;
  #ticker: TimerHandle | undefined;

  #link: Link | undefined;
  #upAt = 0;
  #everUp = false;
  #lastDown: string | undefined;
  readonly #output: OutputState;
  #graceTimer: TimerHandle | undefined;
  #confirmTimer: TimerHandle | undefined;
  #stallTimer: TimerHandle | undefined;
  #backedUpAt = 0;
  #dropped = 0;
  #chunksSent = 0;
  readonly #downLog: RateLimitedLog;
  readonly #lateLog: RateLimitedLog;

  constructor(
    @inject(TOKENS.Options) private readonly opts: SnapcastOptions,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Events) private readonly events: HostEvents,
    @inject(TOKENS.Context) private readonly context: PluginContext,
  ) {
    this.#output = new OutputState(events);
    this.#downLog = new RateLimitedLog(() => this.clock.now(), 5, 30_000);
    this.#lateLog = new RateLimitedLog(() => this.clock.now(), 5, 30_000);
    this.commands = { status: () => this.#status() };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Backend contract

  async init(): Promise<void> {
    this.#settings = await this.#readSettings();
    const link = this.#makeLink();
    this.#link = link;
    await link.start();
  }

  negotiate(requested: SampleFormat): SampleFormat {
    const format = this.#settings?.format ?? this.#fallbackSettings().format;
    if (!sameFormat(format, requested))
      this.log.info(
        { requested: formatToString(requested), stream: formatToString(format) },
        "speakerd's output format is the stream's; tracks are converted to it",
      );
    return format;
  }

  configure(format: SampleFormat): void {
    const settings = this.#settings ?? this.#fallbackSettings();
    if (!sameFormat(format, settings.format))
      throw new SpeakerdError(
        SnapcastErrorCodes.FORMAT,
        `the stream takes ${formatToString(settings.format)} (${settings.from}), not ${formatToString(format)}`,
        { plugin: PLUGIN },
      );
    this.#format = format;
    this.#bpf = bytesPerFrame(format);
    this.#chunkFrames = Math.max(1, framesForMs(settings.chunkMs, format));
    this.#chunkBytes = this.#chunkFrames * this.#bpf;
    this.#leadFrames = framesForMs(this.opts.leadMs, format) + this.#chunkFrames;
    this.#bufferFrames = framesForMs(this.opts.bufferMs, format);
    this.#silentChunk = silence(format, this.#chunkFrames);
    this.#chunk = new Uint8Array(this.#chunkBytes);
    this.#pacer = new RealtimePacer(this.clock, format.rate, this.#leadFrames);
    this.log.info(
      {
        where: this.#link?.where,
        format: formatToString(format),
        chunkFrames: this.#chunkFrames,
        bufferMs: this.opts.bufferMs,
        from: settings.from,
      },
      `feeding snapserver stream "${this.opts.stream}" (${snapFormatString(format)}, ${settings.chunkMs} ms chunks)`,
    );
  }

  async activate(format: SampleFormat): Promise<void> {
    if (this.#closed) throw new SpeakerdError(SnapcastErrorCodes.STATE, 'the backend is closed', { plugin: PLUGIN });
    if (!this.#format || !this.#pacer) this.configure(format);
    if (!sameFormat(format, this.#format!))
      throw new SpeakerdError(
        SnapcastErrorCodes.FORMAT,
        `the stream takes ${formatToString(this.#format!)}, not ${formatToString(format)}`,
        { plugin: PLUGIN },
      );
    this.#hostActive = true;
    this.#idleSince = undefined;
    if (!this.#pacer!.running) this.#startStream();
    const link = this.#link;
    if (link && !link.up && this.#lastDown !== undefined && this.#everUp) this.#reportLost(this.#lastDown);
    if (link && !link.up && !this.#everUp) this.#armGrace();
  }

  /** A query: what real time plus the lead allows; 0 while paused. */
  writable(): number {
    if (!this.#hostActive || this.#paused || this.#closed || !this.#pacer) return 0;
    return this.#pacer.writable();
  }

  write(data: Uint8Array): number {
    const pacer = this.#pacer;
    if (!this.#hostActive || this.#paused || this.#closed || !pacer || !this.#format) return 0;
    const n = Math.min(framesIn(data.byteLength, this.#format), pacer.writable());
    if (n <= 0) return 0;
    this.#put(data, n * this.#bpf); // copies: the host reuses `data`
    pacer.wrote(n);
    this.#silenceSinceHost = 0;
    return n;
  }

  /**
   * A query: the host's frames written that the rooms have not heard yet: what is ahead of real time in the
   * stream, plus snapserver's buffer, less the silence written after the host's last frame.
   */
  delay(): number {
    const pacer = this.#pacer;
    if (!pacer || !pacer.running) return 0;
    const ahead = pacer.written - pacer.elapsedFrames();
    return Math.max(0, ahead + this.#bufferFrames - this.#silenceSinceHost);
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    // While paused, the silence keeps as far ahead of real time as the audio was when the pause came (to within
    // 3/4 of a chunk), so that the silence resume() leaves in the stream is the pause, not the pause plus a lead.
    const pacer = this.#pacer;
    if (pacer?.running) this.#pauseAhead = pacer.written - pacer.elapsedFrames();
    this.#pad(); // the last frames go out now, the rest of their chunk silent; silence follows at real time
  }

  resume(): void {
    this.#paused = false;
  }

  async idle(): Promise<void> {
    this.#hostActive = false;
    this.#clearGrace();
    if (this.#pacer?.running) {
      this.#pad();
      this.#idleSince = this.clock.now();
      if (this.opts.idleSilenceMs === 0) this.#stopStream();
    }
    this.#logDropped();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#hostActive = false;
    if (this.#pacer?.running) this.#pad();
    this.#stopStream();
    this.#clearGrace();
    this.#clearStall();
    this.#clearConfirm();
    this.#logDropped();
    await this.#link?.close();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The stream

  #startStream(): void {
    this.#pacer!.start();
    this.#fill = 0;
    this.#chunk = new Uint8Array(this.#chunkBytes);
    this.#silenceSinceHost = 0;
    this.#pauseAhead = this.#leadFrames;
    this.#schedule();
  }

  #stopStream(): void {
    this.#pacer?.stop();
    this.#idleSince = undefined;
    if (this.#ticker !== undefined) this.clock.clearTimeout(this.#ticker);
    this.#ticker = undefined;
  }

  #tickMs(): number {
    return Math.max(1, msForFrames(this.#chunkFrames, this.#format!) / 2);
  }

  #schedule(): void {
    if (this.#ticker !== undefined || this.#closed) return;
    this.#ticker = this.clock.setTimeout(() => {
      this.#ticker = undefined;
      this.#tick();
    }, this.#tickMs());
  }

  /** Keep the stream going: silence wherever the host has not kept a chunk ahead of real time. */
  #tick(): void {
    const pacer = this.#pacer;
    if (this.#closed || !pacer || !pacer.running) return;
    if (
      !this.#hostActive &&
      this.#idleSince !== undefined &&
      this.clock.now() - this.#idleSince >= this.opts.idleSilenceMs
    ) {
      this.log.debug('idle: the stream is left to go idle in snapserver');
      this.#stopStream();
      return;
    }
    const elapsed = pacer.elapsedFrames();
    const ahead = pacer.written - elapsed;
    if (ahead < 0 && pacer.written > 0 && this.#link?.up) {
      // snapserver may have found nothing to read: it then fills the rest of its chunk with silence
      const { log, suppressed } = this.#lateLog.shouldLog();
      if (log)
        this.log.warn(
          { lateMs: Math.round(msForFrames(-ahead, this.#format!)), suppressed },
          'the stream fell behind real time (speakerd was not scheduled in time)',
        );
    }
    if (this.#paused && this.#hostActive) {
      // ticks every half chunk, whole chunks: ahead stays within pauseAhead - 3/4 chunk .. pauseAhead + 3/4 chunk
      this.#silenceTo(elapsed + Math.max(2 * this.#chunkFrames, this.#pauseAhead) - this.#chunkFrames / 4);
    } else if (!this.#hostActive || ahead < this.#chunkFrames) this.#silenceTo(elapsed + this.#leadFrames);
    this.#schedule();
  }

  /** Copy `bytes` bytes of `data` (whole frames) into chunks, sending each one that is full. */
  #put(data: Uint8Array, bytes: number): void {
    let off = 0;
    while (off < bytes) {
      const n = Math.min(bytes - off, this.#chunkBytes - this.#fill);
      this.#chunk.set(data.subarray(off, off + n), this.#fill);
      this.#fill += n;
      off += n;
      if (this.#fill === this.#chunkBytes) this.#sendChunk();
    }
  }

  #sendChunk(): void {
    const chunk = this.#chunk;
    this.#chunk = new Uint8Array(this.#chunkBytes);
    this.#fill = 0;
    this.#send(chunk);
  }

  /** Complete the chunk being filled with silence (its buffer is zeroed) and send it. */
  #pad(): void {
    if (this.#fill === 0 || !this.#pacer) return;
    const frames = (this.#chunkBytes - this.#fill) / this.#bpf;
    if (this.#format?.encoding === 'u8') this.#chunk.fill(0x80, this.#fill);
    this.#pacer.wrote(frames);
    this.#silenceSinceHost += frames;
    this.#sendChunk();
  }

  /** Silence up to stream position `target` (rounded up to whole chunks). */
  #silenceTo(target: number): void {
    const pacer = this.#pacer!;
    if (pacer.written >= target) return;
    this.#pad();
    while (pacer.written < target) {
      pacer.wrote(this.#chunkFrames);
      this.#silenceSinceHost += this.#chunkFrames;
      this.#send(this.#silentChunk);
    }
  }

  #send(chunk: Uint8Array): void {
    const link = this.#link;
    if (link && link.write(chunk)) {
      this.#chunksSent++;
      if (link.backedUp) this.#armStall();
      return;
    }
    if (this.#dropped === 0)
      this.log.warn(`${link?.where ?? 'snapserver'} is down: dropping audio at real time until it is back`);
    this.#dropped += this.#chunkFrames;
  }

  #logDropped(): void {
    if (this.#dropped === 0 || !this.#format) return;
    const seconds = Math.round(msForFrames(this.#dropped, this.#format)) / 1000;
    this.log.warn(
      { frames: this.#dropped, seconds },
      `dropped ${this.#dropped} frames (${seconds} s) while snapserver was not reachable`,
    );
    this.#dropped = 0;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The link and its state

  #makeLink(): Link {
    const listener = {
      up: (where: string) => this.#onUp(where),
      down: (why: string, wasUp: boolean) => this.#onDown(why, wasUp),
      drain: () => this.#clearStall(),
    };
    const o = this.opts;
    const opts = { reconnectMinMs: o.reconnectMinMs, reconnectMaxMs: o.reconnectMaxMs, stallMs: o.stallMs };
    const deps = { clock: this.clock, log: this.log, opts, listener };
    if (o.source === 'pipe') return new PipeLink(deps, resolvePath(this.context.configDir, o.pipe));
    if (o.mode === 'listen') return new ListenLink(deps, o.host, o.port);
    return new ConnectLink(deps, o.host, o.port);
  }

  #onUp(where: string): void {
    if (this.#closed) return;
    this.#everUp = true;
    this.#upAt = this.clock.now();
    this.#lastDown = undefined;
    this.#clearGrace();
    this.log.info(`streaming to ${where}`);
    this.#logDropped();
    if (this.#output.state !== 'ok') this.#confirm(where);
    if (this.opts.control.enabled) void this.#recheck();
  }

  #onDown(why: string, wasUp: boolean): void {
    if (this.#closed) return;
    this.#clearStall();
    this.#clearConfirm();
    if (wasUp && this.clock.now() - this.#upAt >= STABLE_AFTER_MS) this.#link?.resetBackoff();
    this.#lastDown = why;
    const { log, suppressed } = this.#downLog.shouldLog();
    if (log) this.log.warn({ suppressed }, `${this.#link?.where ?? 'snapserver'}: ${why}`);
    if (wasUp || (this.#pacer?.running && this.#hostActive && this.#graceTimer === undefined && this.#everUp))
      this.#reportLost(why);
  }

  /** Report `ok` once the link that came back has stayed up for its confirmation time. */
  #confirm(where: string): void {
    this.#clearConfirm();
    const link = this.#link;
    const ok = (): void => {
      this.#confirmTimer = undefined;
      if (this.#closed || !link?.up || link.backedUp) return;
      this.#output.ok(`streaming to ${where} again`);
    };
    if (!link || link.confirmMs === 0) return ok();
    this.#confirmTimer = this.clock.setTimeout(ok, link.confirmMs);
  }

  #clearConfirm(): void {
    if (this.#confirmTimer !== undefined) this.clock.clearTimeout(this.#confirmTimer);
    this.#confirmTimer = undefined;
  }

  #reportLost(why: string): void {
    if (!this.#closed) this.#output.lost(`${this.#link?.where ?? 'snapserver'}: ${why}`);
  }

  /** Playback waits for a link that has never been up: report it lost if it is still down after the grace. */
  #armGrace(): void {
    if (this.#graceTimer !== undefined) return;
    this.#graceTimer = this.clock.setTimeout(() => {
      this.#graceTimer = undefined;
      if (!this.#link?.up && this.#hostActive) this.#reportLost(this.#lastDown ?? 'not connected');
    }, FIRST_CONNECT_GRACE_MS);
  }

  #clearGrace(): void {
    if (this.#graceTimer !== undefined) this.clock.clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
  }

  #armStall(): void {
    if (this.#stallTimer !== undefined) return;
    this.#backedUpAt = this.clock.now();
    this.#stallTimer = this.clock.setTimeout(() => {
      this.#stallTimer = undefined;
      const link = this.#link;
      if (!link?.backedUp || this.#closed) return;
      const ms = Math.round(this.clock.now() - this.#backedUpAt);
      link.drop(`snapserver stopped reading (nothing taken for ${ms} ms)`);
    }, this.opts.stallMs);
  }

  #clearStall(): void {
    if (this.#stallTimer !== undefined) this.clock.clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The stream's settings, over JSON-RPC

  #fallbackSettings(): StreamSettings {
    const text = this.opts.sampleFormat ?? SNAPSERVER_DEFAULTS.sampleFormat;
    return {
      format: parseSnapFormat(text, this.opts.sampleFormat ? 'snapcast.sampleFormat' : "snapserver's default"),
      chunkMs: this.opts.chunkMs ?? SNAPSERVER_DEFAULTS.chunkMs,
      from: this.opts.sampleFormat ? 'snapcast.sampleFormat' : "snapserver's default, unchecked",
    };
  }

  async #queryStream(): Promise<SnapStream | undefined> {
    const c = this.opts.control;
    const streams = await getStreams(c.host, c.port, c.timeoutMs);
    const stream = streams.find((s) => s.id === this.opts.stream);
    if (!stream)
      throw new SpeakerdError(
        SnapcastErrorCodes.STREAM,
        `snapserver at ${c.host}:${c.port} has no stream "${this.opts.stream}" (it has ${
          streams.map((s) => JSON.stringify(s.id)).join(', ') || 'none'
        }); set snapcast.stream to the name= of the source`,
        { plugin: PLUGIN },
      );
    return stream;
  }

  /** Read the stream's settings at start-up: a coded error when they contradict the options, else best effort. */
  async #readSettings(): Promise<StreamSettings> {
    const fallback = this.#fallbackSettings(); // also checks snapcast.sampleFormat
    if (!this.opts.control.enabled) return fallback;
    let stream: SnapStream | undefined;
    try {
      stream = await this.#queryStream();
    } catch (err) {
      if (!(err instanceof ControlError)) throw err;
      this.log.warn(
        `could not read the stream's settings from snapserver's control port (${err.message}); using ${fallback.from} ` +
          `${snapFormatString(fallback.format)}`,
      );
      return fallback;
    }
    return this.#check(stream!);
  }

  /** The stream's settings, checked against the options. */
  #check(stream: SnapStream): StreamSettings {
    const o = this.opts;
    const q = stream.uri.query ?? {};
    const fail = (code: string, why: string) =>
      new SpeakerdError(code, `snapserver stream "${stream.id}" (${stream.uri.raw}): ${why}`, { plugin: PLUGIN });
    const scheme = stream.uri.scheme;
    if (scheme !== o.source)
      throw fail(SnapcastErrorCodes.STREAM, `it is a ${scheme} source, but snapcast.source is "${o.source}"`);
    if (o.source === 'tcp') {
      const theirs = q.mode ?? 'server';
      const want = o.mode === 'connect' ? 'server' : 'client';
      if (theirs !== want)
        throw fail(
          SnapcastErrorCodes.STREAM,
          `its mode is ${theirs}, so snapcast.mode must be "${theirs === 'server' ? 'connect' : 'listen'}", not "${o.mode}"`,
        );
      const port = Number(
        /:(\d+)$/.exec(stream.uri.host)?.[1] ?? (theirs === 'server' ? SNAPSERVER_DEFAULTS.tcpSourcePort : NaN),
      );
      if (Number.isFinite(port) && port !== o.port)
        throw fail(SnapcastErrorCodes.STREAM, `its port is ${port}, but snapcast.port is ${o.port}`);
    }
    const codec = q.codec;
    if (q.sampleformat === undefined) throw fail(SnapcastErrorCodes.FORMAT, 'its settings give no sampleformat');
    const format = parseSnapFormat(q.sampleformat, `snapserver stream "${stream.id}"`);
    if (o.sampleFormat !== undefined) {
      const mine = parseSnapFormat(o.sampleFormat, 'snapcast.sampleFormat');
      if (!sameFormat(mine, format))
        throw fail(
          SnapcastErrorCodes.FORMAT,
          `its sampleformat is ${q.sampleformat}, but snapcast.sampleFormat is ${o.sampleFormat}`,
        );
    }
    const theirChunk = q.chunk_ms !== undefined ? Number(q.chunk_ms) : SNAPSERVER_DEFAULTS.chunkMs;
    if (o.chunkMs !== undefined && o.chunkMs !== theirChunk)
      throw fail(SnapcastErrorCodes.STREAM, `its chunk_ms is ${theirChunk}, but snapcast.chunkMs is ${o.chunkMs}`);
    this.log.debug({ stream: stream.id, status: stream.status, codec }, 'stream settings read over JSON-RPC');
    return {
      format,
      chunkMs: Number.isInteger(theirChunk) && theirChunk > 0 ? theirChunk : SNAPSERVER_DEFAULTS.chunkMs,
      from: "the stream's settings",
    };
  }

  /** After a (re)connection: is the stream still the one we feed? Best effort, never in the way of the audio. */
  async #recheck(): Promise<void> {
    try {
      const stream = await this.#queryStream();
      if (this.#closed || !stream || !this.#format) return;
      const settings = this.#check(stream);
      if (
        !sameFormat(settings.format, this.#format) ||
        framesForMs(settings.chunkMs, this.#format) !== this.#chunkFrames
      )
        this.log.error(
          `snapserver's stream "${stream.id}" is now ${snapFormatString(settings.format)} in ${settings.chunkMs} ms ` +
            `chunks, but speakerd feeds ${snapFormatString(this.#format)}: restart speakerd (or reload) to follow it`,
        );
    } catch (err) {
      if (this.#closed) return;
      const { log } = this.#downLog.shouldLog();
      if (log) this.log.warn(`checking the stream over JSON-RPC: ${(err as Error).message}`);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // snapcast.status

  async #status(): Promise<Record<string, unknown>> {
    const format = this.#format;
    const out: Record<string, unknown> = {
      where: this.#link?.where ?? null,
      connected: this.#link?.up ?? false,
      stream: this.opts.stream,
      format: format ? snapFormatString(format) : null,
      chunkFrames: this.#chunkFrames,
      bufferMs: this.opts.bufferMs,
      streaming: this.#pacer?.running ?? false,
      chunksSent: this.#chunksSent,
      droppedFrames: this.#dropped,
    };
    if (this.opts.control.enabled) {
      try {
        const stream = await this.#queryStream();
        out.snapserverStatus = stream?.status ?? null;
      } catch (err) {
        out.snapserverStatus = null;
        out.controlError = (err as Error).message;
      }
    }
    return out;
  }
}
