import {
  accessSync,
  closeSync,
  constants,
  createReadStream,
  openSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect, type Socket } from 'node:net';
import { basename, resolve as resolvePath } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { emitKeypressEvents } from 'node:readline';
import cliProgress from 'cli-progress';
import { execa } from 'execa';
import { bytesPerFrame, LineSplitter } from '@speakerd/plugin-sdk';
import type { GlobalOptions } from './cli-options.js';
import { loadOrFail, refuseRoot } from './cli-config.js';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK } from './cli-exit.js';
import { parseWavHeader } from './decoders/wav.js';
import { Engine } from './engine.js';
import { createLogger } from './logger.js';

/** `speakerd play`'s own options. */
export interface PlayOptions extends GlobalOptions {
  /** A backend name for this run, whatever the configuration says. */
  backend?: string;
  /** An output for this run: alsa:DEVICE, command:CMD, file:PATH, rtp:HOST[:PORT], or auto. */
  output?: string;
}

/** How long the output may stay lost with nothing heard before `play` gives up. */
export const LOST_GIVE_UP_MS = 5000;
const VOLUME_STEP = 5;

interface Item {
  file: string;
  id: string;
  duration: number | undefined;
  /** Stream the file itself as a `wav` decoder connection (no ffmpeg needed). */
  direct: boolean;
  decoder?: { kill(): void };
  failed?: string;
  skipped?: boolean;
  arrived?: boolean;
  announced?: boolean;
}

/** Quote `s` for /bin/sh. */
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The configuration keys `--backend` and `--output` stand for. `--output` names a backend and its main setting:
 * `alsa:DEVICE`, `command:CMD`, `file:PATH` (raw PCM into a file, through `command`), `rtp:HOST[:PORT]`
 * (`rtp:[::1]:5004` for IPv6), or `auto`.
 */
export function outputOverrides(opts: { backend?: string; output?: string }): Record<string, unknown> | string {
  const over: Record<string, unknown> = {};
  if (opts.backend !== undefined) over.backend = opts.backend;
  const out = opts.output;
  if (out === undefined) return over;
  if (out === 'auto') return { ...over, backend: 'auto' };
  const colon = out.indexOf(':');
  const kind = colon < 0 ? out : out.slice(0, colon);
  const value = colon < 0 ? '' : out.slice(colon + 1);
  const need = (what: string) =>
    value === '' ? `--output ${kind}: needs ${what} after the colon (e.g. --output ${kind}:${examples[kind]})` : '';
  const examples: Record<string, string> = {
    alsa: 'hw:0,0',
    command: '"aplay -q -t raw -f cd -"',
    file: 'out.raw',
    rtp: '127.0.0.1:5004',
  };
  switch (kind) {
    case 'alsa':
      return need('a device') || { ...over, backend: 'alsa', alsa: { device: value } };
    case 'command':
      return need('a shell command') || { ...over, backend: 'command', command: { run: value } };
    case 'file':
      return (
        need('a path') || {
          ...over,
          backend: 'command',
          // appended to, and kept running while idle: the command is started again after a gap, a format
          // change or a failure, and `>` would empty the file each time. runPlay empties it once, at the start.
          command: { run: `cat >> ${shellQuote(resolvePath(value))}`, keepRunning: true },
        }
      );
    case 'rtp': {
      if (value === '') return need('a destination');
      const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(value) ?? /^([^:]+)(?::(\d+))?$/.exec(value);
      if (!m) return `--output rtp: expected HOST or HOST:PORT ([::1]:5004 for IPv6), got "${value}"`;
      return {
        ...over,
        backend: 'rtp',
        rtp: { destination: m[1], ...(m[2] === undefined ? {} : { port: Number(m[2]) }) },
      };
    }
    default:
      return `--output: expected alsa:DEVICE, command:CMD, file:PATH, rtp:HOST[:PORT] or auto, got "${out}"`;
  }
}

/** The file `--output file:PATH` writes to (absolute), if that is the output. */
export function outputFile(opts: { output?: string }): string | undefined {
  const out = opts.output;
  return out?.startsWith('file:') && out.length > 5 ? resolvePath(out.slice(5)) : undefined;
}

/** Is `cmd` on the PATH? */
async function have(cmd: string): Promise<boolean> {
  try {
    await execa(cmd, ['-version'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** Seconds of audio in `file` according to ffprobe, or undefined. */
async function probeDuration(file: string): Promise<number | undefined> {
  try {
    const r = await execa('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], {
      timeout: 10_000,
    });
    const d = Number.parseFloat(r.stdout.trim());
    return Number.isFinite(d) ? d : undefined;
  } catch {
    return undefined;
  }
}

/** A WAV file speakerd reads itself: its duration in seconds (undefined if it does not say), or why not. */
function wavInfo(file: string): { duration: number | undefined } | { error: string } {
  const buf = Buffer.alloc(65536);
  let n: number;
  const fd = openSync(file, 'r');
  try {
    n = readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  const h = parseWavHeader(buf.subarray(0, n));
  if (h.kind === 'ok') {
    const bytes = h.dataBytes ?? statSync(file).size - h.dataOffset;
    return { duration: bytes / bytesPerFrame(h.format) / h.format.rate };
  }
  return { error: h.kind === 'error' ? h.message : 'the header is cut short' };
}

/**
 * Connect a decoder for `item`: ffmpeg decoding to WAV with 32-bit float samples (which carries 16- and 24-bit
 * sources exactly and lets speakerd convert to the output format), or, for a WAV file without ffmpeg, the file
 * itself. The header is sent first and the audio once speakerd has answered it.
 */
function startDecoder(socketPath: string, item: Item, onError: (why: string) => void): void {
  const sock: Socket = connect(socketPath);
  let source: NodeJS.ReadableStream;
  let kill: () => void;
  if (item.direct) {
    // streamed as it is: speakerd parses the RIFF header
    const rs = createReadStream(item.file);
    rs.on('error', (err: Error) => onError(err.message));
    source = rs;
    kill = () => (rs.destroy(), sock.destroy());
  } else {
    const ff = execa(
      'ffmpeg',
      ['-nostdin', '-v', 'error', '-i', item.file, '-map', '0:a:0', '-vn', '-c:a', 'pcm_f32le', '-f', 'wav', '-'],
      { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore', buffer: { stdout: false, stderr: true }, reject: false },
    );
    source = ff.stdout!;
    kill = () => (ff.kill(), sock.destroy());
    void ff.then((r) => {
      if (r.exitCode !== 0 && !r.isTerminated)
        onError(
          (r.stderr as string).trim().split('\n').pop() || `ffmpeg could not decode it (exit status ${r.exitCode})`,
        );
    });
    ff.catch(() => {});
  }
  item.decoder = { kill };
  sock.on('error', () => kill());
  sock.on('connect', () => sock.write(JSON.stringify({ id: item.id, encoding: 'wav' }) + '\n'));
  let answered = false;
  sock.on('data', () => {
    // the {"ok":…} answer line: then the audio (a refusal also arrives as a control-channel error)
    if (answered) return;
    answered = true;
    source.pipe(sock);
  });
}

const mmss = (s: number | undefined) =>
  s === undefined ? '--:--' : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

/** `speakerd play FILE…`: a small built-in music server with progress. */
export async function runPlay(files: string[], opts: PlayOptions): Promise<number> {
  refuseRoot(opts);
  const say0 = (line: string) => process.stderr.write(`speakerd play: ${line}\n`);

  // what a person gets wrong first: a file that is not there, a format that needs ffmpeg, a bad --output
  const over = outputOverrides(opts);
  if (typeof over === 'string') {
    say0(over);
    return EXIT_CONFIG;
  }
  const ffmpeg = await have('ffmpeg');
  const ffprobe = ffmpeg && (await have('ffprobe'));
  const items: Item[] = [];
  let bad = 0;
  for (const [i, file] of files.entries()) {
    try {
      accessSync(file, constants.R_OK);
      if (statSync(file).isDirectory()) throw Object.assign(new Error(), { code: 'EISDIR' });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      say0(
        `${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`,
      );
      bad++;
      continue;
    }
    const wav = /\.wav$/i.test(file) ? wavInfo(file) : undefined;
    const direct = !ffmpeg && wav !== undefined && !('error' in wav);
    if (!ffmpeg && !direct) {
      say0(
        `${file}: ${wav && 'error' in wav ? `not a WAV file speakerd reads (${wav.error})` : 'not a WAV file'}, ` +
          'and decoding it needs ffmpeg, which is not installed (apt-get install ffmpeg)',
      );
      bad++;
      continue;
    }
    items.push({
      file,
      id: `play-${i + 1}-${basename(file)}`.slice(0, 64),
      duration: wav && !('error' in wav) ? wav.duration : ffprobe ? await probeDuration(file) : undefined,
      direct,
    });
  }
  if (items.length === 0) return EXIT_CONFIG;

  const config = await loadOrFail(opts, over, { sections: 'written' });
  const outFile = outputFile(opts);
  if (outFile !== undefined) {
    // the run's audio and nothing else: emptied once here (the command appends)
    try {
      writeFileSync(outFile, '');
    } catch (err) {
      say0(`--output file: cannot write ${outFile}: ${(err as Error).message}`);
      return EXIT_FAILURE;
    }
  }
  const tty = process.stderr.isTTY === true;
  const multibar = tty
    ? new cliProgress.MultiBar(
        {
          format: '{title} |{bar}| {pos} / {dur} {state}',
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          stream: process.stderr,
          barsize: 30,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let bar: cliProgress.SingleBar | undefined;
  /** A line above the progress bar (or a plain line without one). */
  const say = (line: string) => {
    if (multibar && bar) multibar.log(line + '\n');
    else process.stderr.write(line + '\n');
  };
  // log lines go above the bar too, never through it
  const logSink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString('utf8');
      if (multibar && bar) multibar.log(text.endsWith('\n') ? text : text + '\n');
      else process.stderr.write(text);
      cb();
    },
  });
  const log = createLogger(opts.logLevel === 'info' ? 'warn' : opts.logLevel, tty, tty ? logSink : undefined);

  const input = new PassThrough();
  const output = new PassThrough();
  let stopped!: () => void;
  const done = new Promise<void>((r) => (stopped = r));
  const engine = new Engine(config, log, {
    configArg: opts.config,
    cwd: process.cwd(),
    overrides: over,
    input,
    output,
    onStopped: () => stopped(),
  });
  const send = (c: Record<string, unknown>) => input.write(JSON.stringify(c) + '\n');

  const showBar = (it: Item, position: number, state: string) => {
    const total = Math.max(1, Math.round(it.duration ?? Math.max(1, position)));
    const payload = {
      title: basename(it.file)
        .slice(0, 30)
        .padEnd(Math.min(30, basename(it.file).length)),
      pos: mmss(position),
      dur: mmss(it.duration),
      state,
    };
    if (!bar) bar = multibar!.create(total, 0, payload);
    bar.setTotal(total);
    bar.update(Math.min(Math.round(position), total), payload);
  };
  let lastPosition = 0;
  const endBar = (it: Item) => {
    if (!bar) return;
    // finished comes up to earlyFinishMs before the end is heard: the bar shows the end (and stays, one line per
    // track); a skipped track's shows where it was left
    if (it.skipped) showBar(it, lastPosition, '(skipped)');
    else if (it.duration !== undefined) showBar(it, it.duration, '');
    bar.stop();
    bar = undefined;
  };

  let failures = bad;
  let index = 0; // the current item: the first that has not ended
  const ended = new Set<string>(); // items finished, cancelled, or skipped because their decoder failed
  let played = 0; // items handed to `play`
  const byId = new Map(items.map((it) => [it.id, it]));
  let started = 0; // items whose decoder has been started
  let volume = config.host.volume;
  let socketPath = config.host.socket;
  /**
   * Keep decoders running for the current and the next item, and send `play` for each in order once its
   * decoder has arrived (so no silence precedes it); an item whose decoder failed is skipped.
   */
  const queueNext = () => {
    while (started < items.length && started < index + 2) {
      const it = items[started++]!;
      startDecoder(socketPath, it, (why) => {
        if (it.failed || it.skipped) return;
        it.failed = why;
        failures++;
        say(`speakerd play: ${it.file}: cannot decode: ${why}`);
        queueNext();
      });
    }
    while (played < items.length && played < index + 2) {
      const it = items[played]!;
      if ((it.failed || it.skipped) && !it.arrived) {
        played++;
        ended.add(it.id);
        continue;
      }
      if (!it.arrived) break;
      send({ type: 'play', id: it.id });
      played++;
    }
    index = ended.size;
    if (ended.size >= items.length) finishedAll();
  };
  let finishedAll: () => void;
  const allDone = new Promise<void>((r) => (finishedAll = r));
  let paused = false;

  // an output that stays lost while nothing is heard — the position does not move (a device that does not open)
  // — is given up on with the reason, rather than played into for ever. A lost output whose audio still goes out
  // (RTP that nobody listens to: the positions advance) plays on.
  let lostTimer: NodeJS.Timeout | undefined;
  let lostWhy: string | undefined;
  let outputLost = false;
  let heardAt: { id: string; position: number } | undefined;
  const arm = () => {
    lostTimer ??= setTimeout(() => {
      say(`speakerd play: the output cannot play: ${lostWhy} (gave up after ${LOST_GIVE_UP_MS / 1000} s)`);
      failures++;
      void engine.stop('the output is lost');
    }, LOST_GIVE_UP_MS);
  };
  const disarm = () => {
    clearTimeout(lostTimer);
    lostTimer = undefined;
  };
  const lost = (why: string | undefined) => {
    outputLost = true;
    lostWhy = why ?? lostWhy ?? 'the output is lost';
    arm();
  };
  const found = () => {
    outputLost = false;
    lostWhy = undefined;
    disarm();
  };
  /** A position report: audio that moves on is being heard (or at least sent). */
  const progress = (id: string, position: number) => {
    const moved = heardAt !== undefined && (heardAt.id !== id || position > heardAt.position + 0.05);
    heardAt = { id, position };
    if (moved) disarm();
    else if (outputLost) arm();
  };

  // the engine's own event lines (each at most the protocol's 65536 bytes; the bound is generous)
  const lines = new LineSplitter(1 << 20, (line) => {
    const e = JSON.parse(line.toString('utf8')) as Record<string, any>;
    const it = typeof e.id === 'string' ? byId.get(e.id) : undefined;
    switch (e.type) {
      case 'ready':
        if (typeof e.socket === 'string') socketPath = e.socket;
        send({ type: 'status', seq: 1 });
        break;
      case 'status':
        if (e.backendState === 'lost') lost(undefined); // the reason came in its backend event
        break;
      case 'playing':
      case 'paused':
        if (!it) break;
        if (!it.announced && (!multibar || e.type === 'playing')) {
          it.announced = true;
          if (!multibar) say(`playing ${it.file}${it.duration === undefined ? '' : ` (${mmss(it.duration)})`}`);
        }
        lastPosition = e.position as number;
        if (e.type === 'playing') progress(it.id, lastPosition);
        if (multibar) showBar(it, lastPosition, e.type === 'paused' ? '(paused)' : '');
        break;
      case 'finished':
      case 'stillborn':
        if (!it) break;
        ended.add(it.id);
        if (multibar) endBar(it);
        else if (it.skipped) say(`skipped ${it.file}`);
        queueNext();
        break;
      case 'arrived':
        if (it) it.arrived = true;
        queueNext();
        break;
      case 'error':
        if (it && !it.failed && !it.arrived && !it.skipped) {
          it.failed = `${e.code}: ${e.message}`;
          failures++;
          say(`speakerd play: ${it.file}: cannot decode (${e.message})`);
          queueNext();
        } else if (!it?.skipped) say(`speakerd play: ${e.code}: ${e.message}`);
        break;
      case 'backend':
        say(`speakerd play: output ${e.state}: ${e.message}`);
        if (e.state === 'lost') lost(String(e.message));
        else if (e.state === 'ok') found();
        break;
    }
  });
  output.on('data', (d: Buffer) => lines.push(d));

  try {
    await engine.start();
  } catch (err) {
    await engine.stop('start-up failed');
    multibar?.stop();
    say0(`cannot start: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT_FAILURE;
  }
  if (engine.autoChoice) say(`speakerd: ${engine.autoChoice.line}`);
  const onSignal = () => void engine.stop('interrupted');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // keys, only when stdin is a terminal: space pauses/resumes, n skips, +/- volume, q quits. EOF on stdin changes
  // nothing.
  if (process.stdin.isTTY) {
    emitKeypressEvents(process.stdin);
    process.stdin.setRawMode(true);
    process.stdin.on('keypress', (s: string | undefined, key: { name?: string; ctrl?: boolean } | undefined) => {
      if (key?.ctrl && key.name === 'c') return void engine.stop('interrupted');
      if (key?.name === 'space') {
        paused = !paused;
        send({ type: paused ? 'pause' : 'resume' });
      } else if (key?.name === 'n') {
        const it = items[index];
        if (it && !it.skipped) {
          it.skipped = true;
          send({ type: 'cancel', id: it.id });
          if (!it.arrived) it.decoder?.kill();
        }
      } else if (s === '+' || s === '=' || s === '-') {
        volume = Math.max(0, Math.min(100, volume + (s === '-' ? -VOLUME_STEP : VOLUME_STEP)));
        send({ type: 'volume', volume });
        say(`volume ${volume}`);
      } else if (key?.name === 'q') {
        void engine.stop('quit');
      }
    });
    say('keys: space pause/resume, n next, +/- volume, q quit');
  }

  queueNext();
  const how = await Promise.race([allDone.then(() => 'all' as const), done.then(() => 'stopped' as const)]);
  // finished comes up to earlyFinishMs early: let the last track play out before stopping
  if (how === 'all')
    await new Promise<void>((resolve) => {
      const check = () => {
        const p = engine.player;
        if (!p || (p.draining.length === 0 && !p.current && p.idle)) return resolve();
        setTimeout(check, 50);
      };
      check();
    });
  found();
  if (process.stdin.isTTY) {
    process.stdin.setRawMode(false);
    process.stdin.pause();
  }
  for (const it of items) it.decoder?.kill();
  await engine.stop('done');
  multibar?.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return failures > 0 ? EXIT_FAILURE : EXIT_OK;
}
