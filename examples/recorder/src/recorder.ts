import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  RealtimePacer,
  SpeakerdError,
  TOKENS,
  bytesPerFrame,
  formatToString,
  framesForMs,
  inject,
  injectable,
  type Backend,
  type Clock,
  type CommandHandler,
  type HostEvents,
  type Logger,
  type PluginContext,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import type { RecorderOptions } from './options.js';
import { UNKNOWN_SIZE, maxDataBytes, wavEncodingFor, wavHeader, writeSizes } from './wav.js';

const PLUGIN = 'recorder';

/** One WAV file being written. */
class Recording {
  readonly stream: WriteStream;
  dataBytes = 0;
  failed: Error | undefined;
  readonly #riffSizeAt: number;
  readonly #dataSizeAt: number;
  readonly maxBytes: number;

  constructor(
    readonly path: string,
    readonly format: SampleFormat,
    onDrain: () => void,
  ) {
    const { header, riffSizeAt, dataSizeAt } = wavHeader(format, UNKNOWN_SIZE);
    this.#riffSizeAt = riffSizeAt;
    this.#dataSizeAt = dataSizeAt;
    this.maxBytes = maxDataBytes(format, header.length);
    // 'wx': never overwrite a file that is there (the name is made unique before)
    this.stream = createWriteStream(path, { flags: 'wx' });
    this.stream.on('error', (err) => (this.failed = err));
    this.stream.on('drain', onDrain);
    this.stream.write(header);
  }

  /** Close the file and write the real sizes into its header (a pad byte first if the data is odd). */
  async finish(): Promise<void> {
    const stream = this.stream;
    if (this.dataBytes % 2 === 1) stream.write(Buffer.alloc(1));
    await new Promise<void>((done) => {
      if (stream.closed || stream.destroyed) return done();
      stream.once('close', () => done());
      stream.end();
    });
    if (this.failed) return;
    const sizes = Buffer.alloc(this.#dataSizeAt + 4);
    writeSizes(sizes, this.#riffSizeAt, this.#dataSizeAt, this.dataBytes);
    const fd = await open(this.path, 'r+');
    try {
      await fd.write(sizes, this.#riffSizeAt, 4, this.#riffSizeAt);
      await fd.write(sizes, this.#dataSizeAt, 4, this.#dataSizeAt);
    } finally {
      await fd.close();
    }
  }
}

/**
 * The `recorder` backend: each session — from the first sound until nothing plays (the host's `idle()`), or a
 * `recorder.split` — becomes one WAV file in `dir`, named by the time it started. Paced at real time by default
 * (positions and `finished` are what a listener would hear), or as fast as the tracks come (`pace: "fast"`).
 */
@injectable()
export class RecorderBackend implements Backend {
  readonly pacing = 'clock' as const;
  readonly commands: Readonly<Record<string, CommandHandler>>;

  #format: SampleFormat | undefined;
  #frameBytes = 1;
  #pacer: RealtimePacer | undefined;
  #recording: Recording | undefined;
  /** Finishing recordings (their headers being written): awaited by idle() and close(). */
  #finishing: Promise<void>[] = [];
  #files: string[] = [];
  #active = false;
  #paused = false;
  #closed = false;
  #splitNext = false;

  constructor(
    @inject(TOKENS.Options) private readonly opts: RecorderOptions,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Events) private readonly events: HostEvents,
    @inject(TOKENS.Context) private readonly context: PluginContext,
  ) {
    this.commands = {
      status: () => this.#status(),
      split: () => {
        this.#splitNext = true;
        return this.#status();
      },
    };
  }

  get #dir(): string {
    return resolve(this.context.configDir, this.opts.dir);
  }

  /** WAV holds little-endian PCM and unsigned 8-bit: big-endian formats are recorded as their little-endian twin. */
  negotiate(requested: SampleFormat): SampleFormat {
    return wavEncodingFor(requested);
  }

  /** Make the recordings directory; a failure is a coded error naming the directory. */
  async #makeDir(): Promise<void> {
    try {
      await mkdir(this.#dir, { recursive: true });
    } catch (err) {
      throw new SpeakerdError(
        'SPEAKERD_ERR_RECORDER_DIR',
        `cannot make the recordings directory ${this.#dir}: ${(err as Error).message}`,
        { plugin: PLUGIN, cause: err },
      );
    }
  }

  async configure(format: SampleFormat): Promise<void> {
    await this.#makeDir();
    this.log.info({ dir: this.#dir, format: formatToString(format) }, 'recording to WAV files');
  }

  async activate(format: SampleFormat): Promise<void> {
    if (this.#closed) throw new SpeakerdError('SPEAKERD_ERR_BACKEND', 'the recorder is closed', { plugin: PLUGIN });
    if (this.#recording && this.#format && formatToString(this.#format) !== formatToString(format)) this.#endFile();
    this.#format = format;
    this.#frameBytes = bytesPerFrame(format);
    await this.#makeDir();
    this.#pacer = new RealtimePacer(this.clock, format.rate, framesForMs(this.opts.leadMs, format));
    if (!this.#paused) this.#pacer.start();
    this.#active = true;
  }

  /** A query: room now (real time plus the lead; never more than the file's stream buffers without waiting). */
  writable(): number {
    if (!this.#active || this.#paused || !this.#pacer) return 0;
    const rec = this.#recording;
    if (rec?.failed) return 1; // let the next write() report the error (a failure the host handles)
    if (rec && rec.stream.writableNeedDrain) return 0; // 'drain' wakes the host
    if (this.opts.pace === 'fast') {
      const room = rec ? rec.stream.writableHighWaterMark - rec.stream.writableLength : 1 << 16;
      return Math.max(1, Math.floor(room / this.#frameBytes));
    }
    return this.#pacer.writable();
  }

  write(data: Uint8Array): number {
    if (!this.#active || this.#paused || !this.#format || !this.#pacer) return 0;
    let rec = this.#recording;
    if (rec?.failed)
      throw new SpeakerdError('SPEAKERD_ERR_RECORDER_WRITE', `cannot write ${rec.path}: ${rec.failed.message}`, {
        plugin: PLUGIN,
      });
    const frames = Math.min(data.length / this.#frameBytes, this.writable());
    if (frames <= 0) return 0;
    if (!rec || this.#splitNext) rec = this.#newFile();
    const bytes = frames * this.#frameBytes;
    // a RIFF file holds at most 4 GiB: go on in a new file
    if (rec.dataBytes + bytes > rec.maxBytes) {
      const fit = rec.maxBytes - rec.dataBytes;
      if (fit > 0) this.#append(rec, data.subarray(0, fit));
      rec = this.#newFile();
      this.#append(rec, data.subarray(fit, bytes));
    } else this.#append(rec, data.subarray(0, bytes));
    if (this.opts.pace === 'realtime') this.#pacer.wrote(frames);
    return frames;
  }

  /** A query: frames written that a listener at real time would not have heard yet. */
  delay(): number {
    if (!this.#active || this.#paused || !this.#pacer || this.opts.pace === 'fast') return 0;
    return this.#pacer.queued();
  }

  pause(): void {
    this.#paused = true;
    this.#pacer?.stop();
  }

  resume(): void {
    this.#paused = false;
    if (this.#active) this.#pacer?.start();
  }

  /** Nothing plays: the session's file is finished (its header gets the real sizes). */
  async idle(): Promise<void> {
    this.#active = false;
    this.#pacer?.stop();
    this.#endFile();
    await Promise.all(this.#finishing);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.idle();
  }

  /** Copy (the host reuses its buffers) and queue on the file's stream. */
  #append(rec: Recording, bytes: Uint8Array): void {
    rec.stream.write(Buffer.from(bytes));
    rec.dataBytes += bytes.length;
  }

  #newFile(): Recording {
    this.#endFile();
    this.#splitNext = false;
    const base = `${this.opts.prefix}${stamp(this.clock.wallNow())}`;
    let path = join(this.#dir, `${base}.wav`);
    for (let i = 2; existsSync(path); i++) path = join(this.#dir, `${base}-${i}.wav`);
    const rec = new Recording(path, this.#format!, () => this.events.wake());
    this.#recording = rec;
    this.#files.push(path);
    this.log.info({ file: path, format: formatToString(rec.format) }, 'recording');
    return rec;
  }

  #endFile(): void {
    const rec = this.#recording;
    if (!rec) return;
    this.#recording = undefined;
    const done = rec.finish().then(
      () => this.log.info({ file: rec.path, seconds: this.#seconds(rec) }, 'recorded'),
      (err: unknown) => this.log.error({ file: rec.path, err: String(err) }, 'cannot finish the recording'),
    );
    this.#finishing.push(done);
    void done.then(() => (this.#finishing = this.#finishing.filter((p) => p !== done)));
  }

  #seconds(rec: Recording): number {
    return Math.round((rec.dataBytes / bytesPerFrame(rec.format) / rec.format.rate) * 1000) / 1000;
  }

  #status(): Record<string, unknown> {
    const rec = this.#recording;
    return {
      recording: rec !== undefined,
      file: rec?.path ?? null,
      seconds: rec ? this.#seconds(rec) : 0,
      files: [...this.#files],
    };
  }
}

/** `20261202T013800Z`: the UTC time, sortable and safe in a file name. */
function stamp(wallMs: number): string {
  return new Date(wallMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
