// Realistic peers for end-to-end tests: decoders that deliver at a given multiple of real time, a music server
// that plays each next track on the previous `finished`, and the analysis of what came out (inserted silence,
// RTP stream continuity, when each byte reached a command). Times are all on one scale, wallNow() (wall time in
// ms with fractions: performance.timeOrigin + performance.now()), the scale test/helpers/stamp.mjs writes too.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { RtpPacket } from '../../packages/plugin-rtp/test/helpers.js';
import { wallNow, type Event, type Speakerd } from './speakerd.js';

export { wallNow };

/** Path of the timestamping command: run it as `node ${STAMP} out.raw stamps.log` (see stamp.mjs). */
export const STAMP = fileURLToPath(new URL('./stamp.mjs', import.meta.url));

/** The command backend's `run` for stamp.mjs: copies to `out`, logs arrival times to `log` (in the config dir). */
export function stampCommand(out = 'out.raw', log = 'stamps.log'): string {
  return `${JSON.stringify(process.execPath)} ${JSON.stringify(STAMP)} ${out} ${log}`;
}

const sleepUntil = (t: number) =>
  new Promise<void>((resolve) => {
    const d = t - wallNow();
    if (d <= 0) setImmediate(resolve);
    else setTimeout(resolve, d);
  });

// ------------------------------------------------------------------------------------------------ the decoder

export interface RealtimeDecoderOptions {
  /** Delivery speed as a multiple of real time (1.1 = 10 % faster than it plays). */
  speed: number;
  /** Frames per write: one size, a list used in turn, or chunk k's size as a function of k. */
  chunkFrames: number | readonly number[] | ((k: number) => number);
  /** Bytes per frame of `pcm` (the header's format). */
  bytesPerFrame: number;
  /** Frames per second of `pcm` (default: the header's `rate`; give it for `wav`). */
  rate?: number;
  /** Send no PCM before speakerd's answer line has come (a decoder that checks it is wanted). */
  waitForAnswer?: boolean;
  /** Bytes written at once right before the first chunk, outside the pacing (e.g. a RIFF/WAVE header). */
  preamble?: Uint8Array;
}

export interface ChunkSent {
  /** When it was written (wallNow scale). */
  at: number;
  /** How late that was against its deadline, in ms (back-pressure or a busy machine). */
  lateMs: number;
  /** Offset of its first byte in `pcm`. */
  offset: number;
  bytes: number;
}

export interface RealtimeDecoderResult {
  /** speakerd's answer line, parsed (undefined if none came). */
  reply: Record<string, any> | undefined;
  /** Everything speakerd sent back. */
  raw: string;
  connectedAt: number;
  /** When the answer line was complete. */
  answerAt: number | undefined;
  /** When the first PCM byte was written (undefined when none was). */
  startAt: number | undefined;
  /** When the last chunk was written and the connection ended from our side. */
  endedAt: number | undefined;
  closedAt: number;
  chunks: ChunkSent[];
  /** PCM bytes written (the preamble not counted). */
  bytesSent: number;
  /** Times 'drain' had to be awaited. */
  drains: number;
  /** A socket error other than EPIPE/ECONNRESET (a refused decoder gets those). */
  error: string | undefined;
}

export type RealtimeDecoder = Promise<RealtimeDecoderResult> & {
  /** Resolves (wallNow) when the connection is up. */
  connected: Promise<number>;
};

function chunkSize(spec: RealtimeDecoderOptions['chunkFrames'], k: number): number {
  const n = typeof spec === 'number' ? spec : typeof spec === 'function' ? spec(k) : spec[k % spec.length]!;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`chunk ${k}: ${n} is not a positive whole number of frames`);
  return n;
}

/**
 * A decoder as a real one behaves: connect, send `header`, optionally wait for the answer line, then write `pcm`
 * in chunks of `chunkFrames` frames at `speed` times real time — chunk k at start + (frames before it) / rate /
 * speed, on absolute deadlines (a late chunk does not delay the later ones) — respecting back-pressure, then end
 * the connection. Resolves once the connection is closed, with the answer line and the timings.
 */
export function realtimeDecoder(
  socket: string,
  header: Record<string, unknown> | string,
  pcm: Uint8Array,
  opts: RealtimeDecoderOptions,
): RealtimeDecoder {
  const rate = opts.rate ?? (typeof header === 'object' ? (header.rate as number | undefined) : undefined);
  if (!rate) throw new Error('realtimeDecoder: give opts.rate (the header has none)');
  const bpf = opts.bytesPerFrame;
  let markConnected: (t: number) => void = () => {};
  const connected = new Promise<number>((r) => (markConnected = r));
  const done = new Promise<RealtimeDecoderResult>((resolve) => {
    const c = connect(socket);
    const result: RealtimeDecoderResult = {
      reply: undefined,
      raw: '',
      connectedAt: NaN,
      answerAt: undefined,
      startAt: undefined,
      endedAt: undefined,
      closedAt: NaN,
      chunks: [],
      bytesSent: 0,
      drains: 0,
      error: undefined,
    };
    let closed = false;
    let onAnswer: (() => void) | undefined;
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      result.raw += d;
      if (result.answerAt === undefined && result.raw.includes('\n')) {
        result.answerAt = wallNow();
        try {
          result.reply = JSON.parse(result.raw.slice(0, result.raw.indexOf('\n'))) as Record<string, any>;
        } catch {
          result.reply = { unparsable: result.raw.slice(0, result.raw.indexOf('\n')) };
        }
        onAnswer?.();
      }
    });
    c.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') result.error = err.message;
    });
    c.on('close', () => {
      closed = true;
      result.closedAt = wallNow();
      onAnswer?.();
      resolve(result);
    });
    const write = async (bytes: Uint8Array) => {
      if (!c.write(bytes)) {
        result.drains++;
        await new Promise<void>((r) => {
          const go = () => (c.off('drain', go), c.off('close', go), r());
          c.on('drain', go).on('close', go);
        });
      }
    };
    c.on('connect', async () => {
      result.connectedAt = wallNow();
      markConnected(result.connectedAt);
      c.write(typeof header === 'string' ? header : JSON.stringify(header) + '\n');
      if (opts.waitForAnswer) {
        if (result.answerAt === undefined) await new Promise<void>((r) => (onAnswer = r));
        if (closed || result.reply?.ok !== true) return; // refused: speakerd closes, we resolve on 'close'
      }
      if (opts.preamble?.length) await write(opts.preamble);
      const start = wallNow();
      result.startAt = start;
      let offset = 0;
      let frames = 0;
      for (let k = 0; offset < pcm.length && !closed; k++) {
        const due = start + (frames / rate / opts.speed) * 1000;
        await sleepUntil(due);
        if (closed) break;
        const bytes = Math.min(chunkSize(opts.chunkFrames, k) * bpf, pcm.length - offset);
        const at = wallNow();
        result.chunks.push({ at, lateMs: Math.max(0, at - due), offset, bytes });
        await write(pcm.subarray(offset, offset + bytes));
        offset += bytes;
        frames += bytes / bpf;
        result.bytesSent = offset;
      }
      result.endedAt = wallNow();
      if (!closed) c.end();
    });
  });
  return Object.assign(done, { connected });
}

// ------------------------------------------------------------------------------------------ the music server

export interface ServerTrack {
  id: string;
  /** Starts this track's decoder (called up front, or when the track is played with `connectOnPlay`). */
  start?: () => RealtimeDecoder;
}

export interface MusicServerOptions {
  /**
   * When to play the first track: `at-once` (as soon as its decoder has been started, before it has even
   * connected), `connected` (its connection is up), `arrived` (speakerd said `arrived`). Default `at-once`.
   */
  firstPlay?: 'at-once' | 'connected' | 'arrived';
  /** Start each next decoder only when that track is played (on the previous `finished`); default: all up front. */
  connectOnPlay?: boolean;
  /** Longest wait for each `finished`. */
  timeoutMs?: number;
}

export interface MusicServerRun {
  /** When each `play` was sent (wallNow). */
  playAt: number[];
  /** Each track's `finished` event and when it arrived. */
  finished: { event: Event; at: number }[];
  /** Each decoder's result (undefined for a track without `start`). */
  decoders: (RealtimeDecoderResult | undefined)[];
}

/**
 * What a music server does: play the first track, then `play` each next one on the previous one's `finished`
 * (sent as soon as the event is read), optionally connecting each next decoder only at that moment. Resolves once
 * the last track is reported finished and every decoder is done.
 */
export async function musicServer(
  s: Speakerd,
  tracks: readonly ServerTrack[],
  opts: MusicServerOptions = {},
): Promise<MusicServerRun> {
  const timeoutMs = opts.timeoutMs ?? 20000;
  const decoders: (RealtimeDecoder | undefined)[] = tracks.map((t) => (opts.connectOnPlay ? undefined : t.start?.()));
  const run: MusicServerRun = { playAt: [], finished: [], decoders: [] };
  for (let i = 0; i < tracks.length; i++) {
    const t = tracks[i]!;
    if (i === 0) {
      decoders[0] ??= t.start?.();
      if (opts.firstPlay === 'connected') await decoders[0]?.connected;
      if (opts.firstPlay === 'arrived') await s.waitFor((e) => e.type === 'arrived' && e.id === t.id, timeoutMs);
    }
    s.send({ type: 'play', id: t.id });
    run.playAt.push(wallNow());
    if (i > 0) decoders[i] ??= t.start?.();
    const fin = await s.waitFor((e) => e.type === 'finished' && e.id === t.id, timeoutMs);
    run.finished.push({ event: fin, at: s.timeOf(fin) });
  }
  run.decoders = await Promise.all(decoders.map((d) => d ?? Promise.resolve(undefined)));
  return run;
}

// ---------------------------------------------------------------------------------------------- the analysis

export interface SilenceReport {
  /** Zero frames the output starts with beyond those `expected` starts with: the k of zeros(k) + expected. */
  leadingZeroFrames: number;
  /** Runs of zero frames inserted after the start: before frame `atFrame` of `expected`, `frames` long. */
  insertions: { atFrame: number; frames: number }[];
  /** Frames of `expected` missing from the output (found again further on): before `atFrame`, `frames` of them. */
  losses: { atFrame: number; frames: number }[];
  /** The first frame of `expected` where the output differs in some other way (the comparison stops there). */
  mismatchAtFrame: number | undefined;
  /** Output frames after the end of `expected` (negative: the output ends that many frames short). */
  extraFrames: number;
  outFrames: number;
  expectedFrames: number;
  /** The output is exactly zeros(leadingZeroFrames) + expected. */
  exact: boolean;
}

function isZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/** Zero frames at frame `f` of `b`, at most `max`. */
function zeroRun(b: Uint8Array, f: number, fb: number, total: number): number {
  let n = 0;
  while (f + n < total && isZero(b, (f + n) * fb, (f + n + 1) * fb)) n++;
  return n;
}

/** How many frames are equal from out frame `i` and expected frame `j` on. */
function equalFrames(out: Buffer, i: number, exp: Buffer, j: number, fb: number): number {
  const n = Math.min(out.length - i * fb, exp.length - j * fb);
  const BLOCK = 65536;
  let same = 0;
  while (same < n) {
    const len = Math.min(BLOCK, n - same);
    const a = out.subarray(i * fb + same, i * fb + same + len);
    const b = exp.subarray(j * fb + same, j * fb + same + len);
    if (a.equals(b)) {
      same += len;
      continue;
    }
    let k = 0;
    while (a[k] === b[k]) k++;
    same += k;
    break;
  }
  return Math.floor(same / fb);
}

/**
 * How `out` differs from zeros(k) + `expected` (k ≥ 0 whole frames): the k, every run of zero frames inserted
 * after that, frames lost, and where the comparison found something else.
 */
export function insertedSilence(out: Uint8Array, expected: Uint8Array, frameBytes: number): SilenceReport {
  const fb = frameBytes;
  const o = Buffer.from(out.buffer, out.byteOffset, out.length);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.length);
  const O = Math.floor(o.length / fb);
  const E = Math.floor(e.length / fb);
  const leading = Math.max(0, zeroRun(o, 0, fb, O) - zeroRun(e, 0, fb, E));
  const r: SilenceReport = {
    leadingZeroFrames: leading,
    insertions: [],
    losses: [],
    mismatchAtFrame: undefined,
    extraFrames: 0,
    outFrames: O,
    expectedFrames: E,
    exact: false,
  };
  let i = leading;
  let j = 0;
  for (;;) {
    const d = equalFrames(o, i, e, j, fb);
    i += d;
    j += d;
    if (j >= E || i >= O) break;
    const zeros = zeroRun(o, i, fb, O);
    if (zeros > 0) {
      // out frame i is zero, expected frame j is not (they differ): exactly `zeros` frames were inserted
      r.insertions.push({ atFrame: j, frames: zeros });
      i += zeros;
      continue;
    }
    // frames lost? find the output's next 32 frames further on in expected
    const probe = o.subarray(i * fb, Math.min(O, i + 32) * fb);
    let at = e.indexOf(probe, (j + 1) * fb);
    while (at >= 0 && at % fb !== 0) at = e.indexOf(probe, at + 1);
    if (probe.length >= 8 * fb && at >= 0) {
      r.losses.push({ atFrame: j, frames: at / fb - j });
      j = at / fb;
      continue;
    }
    r.mismatchAtFrame = j;
    break;
  }
  if (r.mismatchAtFrame === undefined) r.extraFrames = j >= E ? O - i : -(E - j);
  r.exact =
    r.insertions.length === 0 &&
    r.losses.length === 0 &&
    r.mismatchAtFrame === undefined &&
    r.extraFrames === 0 &&
    o.length % fb === 0;
  return r;
}

/** Where frame `f` of `expected` is in the output, by the report (undefined if lost or past a mismatch). */
export function outFrameOf(r: SilenceReport, f: number): number | undefined {
  if (r.mismatchAtFrame !== undefined && f >= r.mismatchAtFrame) return undefined;
  let at = r.leadingZeroFrames + f;
  for (const ins of r.insertions) if (ins.atFrame <= f) at += ins.frames;
  for (const l of r.losses) {
    if (f >= l.atFrame && f < l.atFrame + l.frames) return undefined;
    if (l.atFrame + l.frames <= f) at -= l.frames;
  }
  return at;
}

/** Inserted silence in ms at `rate`: count and total (the figure the issue quotes). */
export function insertedMs(r: SilenceReport, rate: number): { count: number; totalMs: number; runsMs: number[] } {
  const runsMs = r.insertions.map((x) => (x.frames * 1000) / rate);
  return { count: runsMs.length, totalMs: runsMs.reduce((a, b) => a + b, 0), runsMs };
}

/** A readable one-line summary of a report. */
export function describeSilence(r: SilenceReport, rate: number): string {
  const ms = (f: number) => `${((f * 1000) / rate).toFixed(1)} ms`;
  const parts = [`leading ${r.leadingZeroFrames} frames (${ms(r.leadingZeroFrames)})`];
  const ins = insertedMs(r, rate);
  parts.push(`${ins.count} insertions, ${ins.totalMs.toFixed(1)} ms in all`);
  if (r.insertions.length)
    parts.push(
      'at ' +
        r.insertions
          .slice(0, 12)
          .map((x) => `${ms(x.atFrame)}+${ms(x.frames)}`)
          .join(', ') +
        (r.insertions.length > 12 ? ', …' : ''),
    );
  if (r.losses.length) parts.push(`${r.losses.length} losses (${r.losses.map((x) => x.frames).join(', ')} frames)`);
  if (r.mismatchAtFrame !== undefined) parts.push(`other difference at frame ${r.mismatchAtFrame}`);
  if (r.extraFrames) parts.push(`${r.extraFrames} extra frames at the end`);
  return parts.join('; ');
}

/** The bytes with every 16-bit sample byte-swapped (s16le → s16be, as RTP carries it). */
export function swap16(b: Uint8Array): Buffer {
  const out = Buffer.from(b);
  out.swap16();
  return out;
}

export interface RtpReport {
  packets: number;
  /** Indices of the packets with the marker bit. */
  markers: number[];
  /** Sequence numbers that did not follow the previous packet's + 1 (mod 2^16). */
  seqGaps: { at: number; expected: number; got: number }[];
  /** Packets whose timestamp is not the previous one + its payload frames: by how many frames (signed). */
  tsJumps: { at: number; frames: number }[];
  /** Packets whose SSRC differs from the first one's. */
  ssrcChanges: number[];
  /** The concatenated payloads against `expected`. */
  payload: SilenceReport;
  /** One marker (the first packet), no gaps, no jumps, one SSRC, payload exactly zeros(k) + expected. */
  exact: boolean;
}

/**
 * Check an RTP stream (the plugin tests' Receiver's packets): markers, sequence continuity, timestamp continuity
 * (each = previous + previous payload frames), and the payload against `expected` (already in network order).
 */
export function checkRtpStream(packets: readonly RtpPacket[], expected: Uint8Array, frameBytes: number): RtpReport {
  const r: RtpReport = {
    packets: packets.length,
    markers: [],
    seqGaps: [],
    tsJumps: [],
    ssrcChanges: [],
    payload: insertedSilence(Buffer.concat(packets.map((p) => p.payload)), expected, frameBytes),
    exact: false,
  };
  packets.forEach((p, i) => {
    if (p.marker) r.markers.push(i);
    if (i === 0) return;
    const prev = packets[i - 1]!;
    if (p.ssrc !== packets[0]!.ssrc) r.ssrcChanges.push(i);
    const seq = (prev.seq + 1) & 0xffff;
    if (p.seq !== seq) r.seqGaps.push({ at: i, expected: seq, got: p.seq });
    const ts = (prev.ts + prev.payload.length / frameBytes) >>> 0;
    if (p.ts !== ts) r.tsJumps.push({ at: i, frames: ((p.ts - ts) | 0) as number });
  });
  r.exact =
    r.markers.length === 1 &&
    r.markers[0] === 0 &&
    r.seqGaps.length === 0 &&
    r.tsJumps.length === 0 &&
    r.ssrcChanges.length === 0 &&
    r.payload.exact;
  return r;
}

/** The packet holding byte `offset` of the concatenated payloads (undefined past the end). */
export function packetAtByte(packets: readonly RtpPacket[], offset: number): number | undefined {
  let at = 0;
  for (let i = 0; i < packets.length; i++) {
    at += packets[i]!.payload.length;
    if (offset < at) return i;
  }
  return undefined;
}

/** When the Receiver got packet `p`, on the wallNow scale (it stamps packets with performance.now()). */
export function rtpArrival(p: RtpPacket): number {
  return performance.timeOrigin + p.at;
}

export interface Stamp {
  /** wallNow scale. */
  at: number;
  /** Bytes in the output file after this read. */
  offset: number;
}

/** The lines stamp.mjs wrote. */
export function readStamps(file: string): Stamp[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [at, offset] = l.trim().split(/\s+/);
      return { at: Number(at), offset: Number(offset) };
    });
}

/** When byte `offset` (0-based) of the output reached the command (undefined: not yet). */
export function arrivalOf(stamps: readonly Stamp[], offset: number): number | undefined {
  let lo = 0;
  let hi = stamps.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (stamps[mid]!.offset > offset) hi = mid;
    else lo = mid + 1;
  }
  return stamps[lo]?.at;
}

/** Median of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// -------------------------------------------------------------------------------------- events about a track

const ABOUT_TRACK = new Set(['playing', 'paused', 'finished', 'stillborn']);

/**
 * Behaviour 4 for track `id`, as a list of problems (empty: fine): exactly one `playing` with position 0 (up to
 * `startWithinS` seconds, default 0: exactly 0), before any other `playing`/`paused` of it; one `finished`, after it;
 * nothing about `id` after `finished`.
 */
export function lifecycleProblems(events: readonly Event[], id: string, { startWithinS = 0 } = {}): string[] {
  const problems: string[] = [];
  const mine = events.map((e, i) => ({ e, i })).filter(({ e }) => e.id === id && ABOUT_TRACK.has(e.type));
  const show = () => mine.map(({ e, i }) => `#${i} ${JSON.stringify(e)}`).join(', ');
  const isStart = (e: Event) => e.type === 'playing' && e.position >= 0 && e.position <= startWithinS;
  const starts = mine.filter(({ e }) => isStart(e));
  const fins = mine.filter(({ e }) => e.type === 'finished');
  if (starts.length !== 1) problems.push(`${id}: ${starts.length} playing events with position 0 (want 1): ${show()}`);
  if (fins.length !== 1) problems.push(`${id}: ${fins.length} finished events (want 1): ${show()}`);
  const first = mine[0];
  if (first && !isStart(first.e))
    problems.push(`${id}: the first event about it is not playing at position 0: ${show()}`);
  const fin = fins[0];
  if (fin) {
    const after = events.slice(fin.i + 1).filter((e) => e.id === id);
    if (after.length)
      problems.push(`${id}: events after its finished: ${after.map((e) => JSON.stringify(e)).join(', ')}`);
  }
  return problems;
}
