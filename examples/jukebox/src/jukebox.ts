// A small jukebox music server on @speakerd/host/client: a queue of files, one ffmpeg decoder per track (decoding
// to a WAV stream of 32-bit floats, which carries 16- and 24-bit sources exactly), each track `play`ed as the
// next one while the one before it plays, and the one after that on its `finished`, so that speakerd joins them
// gaplessly.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { basename } from 'node:path';
import { SpeakerdClient, type Event } from '@speakerd/host/client';

export interface JukeboxOptions {
  /** The decoder command for a file: argv (default ffmpeg to f32le WAV on stdout). */
  decoder?: (file: string) => string[];
  /**
   * Before the first track of a run is played, wait until this many seconds of it are buffered (or its decoder has
   * finished), so the output does not start with silence (default 0.5).
   */
  prebufferSeconds?: number;
  /**
   * After the last `finished` (which comes up to speakerd's `earlyFinishMs` before the end is heard), how long the
   * end takes to play out (default 1500 ms): {@link Jukebox.run} resolves after it.
   */
  playOutMs?: number;
  /** Where lines about what plays go (default stdout). */
  print?: (line: string) => void;
}

export type TrackState = 'queued' | 'decoding' | 'played' | 'playing' | 'finished' | 'failed';

export interface Track {
  file: string;
  id: string;
  state: TrackState;
  /** Why it failed (ffmpeg's last line, or speakerd's error). */
  error?: string;
}

export const ffmpegDecoder = (file: string): string[] => [
  'ffmpeg',
  '-nostdin',
  '-v',
  'error',
  '-i',
  file,
  '-map',
  '0:a:0',
  '-vn',
  '-f',
  'wav',
  '-c:a',
  'pcm_f32le',
  '-',
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The jukebox: add files with {@link enqueue}, then {@link run} plays the queue through `client`. */
export class Jukebox extends EventEmitter {
  readonly tracks: Track[] = [];
  readonly #client: SpeakerdClient;
  readonly #opts: Required<JukeboxOptions>;
  readonly #decoders = new Map<string, ChildProcess>();
  #next = 0; // the next track to start a decoder for
  #toPlay = 0; // the next track to send `play` for
  #done = 0; // tracks finished or failed, in queue order
  #starting = false;
  #serial = 0;
  #wake: (() => void) | undefined;

  constructor(client: SpeakerdClient, opts: JukeboxOptions = {}) {
    super();
    this.#client = client;
    this.#opts = {
      decoder: opts.decoder ?? ffmpegDecoder,
      prebufferSeconds: opts.prebufferSeconds ?? 0.5,
      playOutMs: opts.playOutMs ?? 1500,
      print: opts.print ?? ((line) => process.stdout.write(line + '\n')),
    };
    client.on('event', (e) => this.#onEvent(e));
  }

  /** Add files to the end of the queue. */
  enqueue(...files: string[]): void {
    for (const file of files)
      this.tracks.push({ file, id: `jb-${++this.#serial}-${basename(file)}`.slice(0, 64), state: 'queued' });
    this.#pump();
  }

  /** Play until the queue is empty and the last track has played out. Resolves with the tracks that failed. */
  async run(): Promise<Track[]> {
    const onExit = () => this.#wake?.();
    this.#client.on('exit', onExit);
    try {
      this.#pump();
      while (this.#done < this.tracks.length) {
        if (this.#client.closed) throw new Error('speakerd went away');
        await new Promise<void>((r) => (this.#wake = r));
      }
    } finally {
      this.#client.off('exit', onExit);
    }
    await sleep(this.#opts.playOutMs);
    return this.tracks.filter((t) => t.state === 'failed');
  }

  /** Skip the track playing now. */
  async skip(): Promise<void> {
    const t = this.tracks[this.#done];
    if (t && (t.state === 'played' || t.state === 'playing')) await this.#client.cancel(t.id);
  }

  /** Stop every decoder (speakerd itself is the caller's, to close). */
  stop(): void {
    for (const d of this.#decoders.values()) d.kill();
    this.#decoders.clear();
  }

  #byId(id: unknown): Track | undefined {
    return typeof id === 'string' ? this.tracks.find((t) => t.id === id) : undefined;
  }

  /** Keep decoders going for the current and the next track, and `play` each in order once it has arrived. */
  #pump(): void {
    while (this.#next < this.tracks.length && this.#next < this.#done + 2)
      this.#startDecoder(this.tracks[this.#next++]!);
    while (this.#toPlay < this.tracks.length && this.#toPlay < this.#done + 2) {
      const t = this.tracks[this.#toPlay]!;
      if (t.state === 'failed') {
        this.#toPlay++;
        continue;
      }
      if (t.state !== 'decoding' || !this.#arrived.has(t.id) || this.#starting) break;
      if (this.#toPlay === this.#done) {
        // nothing plays ahead of it: let some of it buffer first, so that it starts without silence
        this.#starting = true;
        void this.#prebuffer(t.id).then(() => {
          this.#starting = false;
          if (t.state !== 'decoding') return this.#pump();
          this.#play(t);
          this.#pump();
        });
        break;
      }
      this.#play(t);
    }
    if (this.#done >= this.tracks.length) this.#wake?.();
  }

  #play(t: Track): void {
    t.state = 'played';
    this.#toPlay++;
    this.#client.play(t.id);
  }

  readonly #arrived = new Set<string>();

  async #prebuffer(id: string): Promise<void> {
    const end = Date.now() + 5000;
    while (Date.now() < end && !this.#client.closed) {
      const st = await this.#client.status().catch(() => undefined);
      const t = st?.tracks.find((x) => x.id === id);
      if (!t || t.eof || t.bufferedSeconds >= this.#opts.prebufferSeconds) return;
      await sleep(20);
    }
  }

  #startDecoder(t: Track): void {
    t.state = 'decoding';
    const [cmd, ...args] = this.#opts.decoder(t.file);
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#decoders.set(t.id, child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
    child.on('error', (err) => this.#fail(t, `${cmd}: ${err.message}`));
    child.on('exit', (code, signal) => {
      this.#decoders.delete(t.id);
      if (code !== 0 && signal === null)
        this.#fail(t, stderr.trim().split('\n').pop() || `${cmd} exited with status ${code}`);
    });
    this.#client.openDecoder(t.id, { encoding: 'wav' }).then(
      (sock) => {
        sock.on('error', () => child.kill());
        child.stdout!.pipe(sock);
      },
      (err: Error) => {
        child.kill();
        this.#fail(t, err.message);
      },
    );
  }

  #fail(t: Track, why: string): void {
    if (t.state === 'failed' || t.state === 'finished') return;
    const wasPlayed = t.state === 'played' || t.state === 'playing';
    t.error = why;
    this.#opts.print(`cannot play ${t.file}: ${why}`);
    this.emit('failed', t);
    if (wasPlayed) return; // it still ends with finished (speakerd plays what came of it)
    t.state = 'failed';
    if (this.tracks.indexOf(t) === this.#done) this.#advance();
    this.#pump();
  }

  /** The current track has ended: move on past it (and past failed ones behind it). */
  #advance(): void {
    while (this.#done < this.tracks.length) {
      const s = this.tracks[this.#done]!.state;
      if (s !== 'finished' && s !== 'failed') break;
      this.#done++;
    }
  }

  #onEvent(e: Event): void {
    const t = 'id' in e ? this.#byId(e.id) : undefined;
    switch (e.type) {
      case 'arrived':
        if (!t) return;
        this.#arrived.add(t.id);
        this.#pump();
        return;
      case 'playing':
        if (t && t.state === 'played') {
          t.state = 'playing';
          this.#opts.print(`playing ${t.file}`);
          this.emit('playing', t);
        }
        return;
      case 'finished':
      case 'stillborn':
        if (!t) return;
        t.state = 'finished';
        this.emit('finished', t);
        this.#advance();
        this.#pump();
        return;
      case 'error':
        if (t && e.code === 'bad-header') this.#fail(t, e.message);
        else if (!t || t.state === 'decoding') this.#opts.print(`speakerd: ${e.code}: ${e.message}`);
        return;
      case 'backend':
        this.#opts.print(`output ${e.state}: ${e.message}`);
        return;
    }
  }
}
