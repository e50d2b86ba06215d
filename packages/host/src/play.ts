import { basename } from 'node:path';
import { connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { emitKeypressEvents } from 'node:readline';
import cliProgress from 'cli-progress';
import { execa } from 'execa';
import { loadOrFail, refuseRoot, EXIT_FAILURE, EXIT_OK, type GlobalOptions } from './cli.js';
import { Engine } from './engine.js';
import { createLogger } from './logger.js';

interface Item {
  file: string;
  id: string;
  duration: number | undefined;
  decoder?: { kill(): void };
  failed?: string;
  arrived?: boolean;
  /** a `playing` event has been seen for it (its position need not be 0: a short track is announced as it ends) */
  announced?: boolean;
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

/**
 * Decode `item.file` with ffmpeg into a decoder connection: WAV with 32-bit float samples, which carries 16- and
 * 24-bit sources exactly and lets speakerd convert to the output format.
 */
function startDecoder(socketPath: string, item: Item, onError: (why: string) => void): void {
  const ff = execa(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-i', item.file, '-map', '0:a:0', '-vn', '-c:a', 'pcm_f32le', '-f', 'wav', '-'],
    { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore', buffer: { stdout: false, stderr: true }, reject: false },
  );
  const sock: Socket = connect(socketPath);
  item.decoder = { kill: () => (ff.kill(), sock.destroy()) };
  sock.on('error', () => ff.kill());
  sock.on('connect', () => {
    sock.write(JSON.stringify({ id: item.id, encoding: 'wav' }) + '\n');
    ff.stdout!.pipe(sock);
  });
  sock.on('data', () => {
    // the {"ok":…} answer; refusals also arrive as control-channel errors
  });
  void ff.then((r) => {
    if (r.exitCode !== 0 && !r.isTerminated)
      onError((r.stderr as string).trim().split('\n').pop() ?? `ffmpeg exit ${r.exitCode}`);
  });
  ff.catch(() => {});
}

/** `speakerd play FILE…`: a small built-in music server with progress. */
export async function runPlay(files: string[], opts: GlobalOptions): Promise<number> {
  refuseRoot(opts);
  const config = await loadOrFail(opts);
  const log = createLogger(opts.logLevel === 'info' ? 'warn' : opts.logLevel);
  const tty = process.stderr.isTTY === true;
  const items: Item[] = await Promise.all(
    files.map(async (file, i) => ({
      file,
      id: `play-${i + 1}-${basename(file)}`.slice(0, 64),
      duration: await probeDuration(file),
    })),
  );
  const input = new PassThrough();
  const output = new PassThrough();
  let stopped!: () => void;
  const done = new Promise<void>((r) => (stopped = r));
  const engine = new Engine(config, log, {
    configArg: opts.config,
    cwd: process.cwd(),
    input,
    output,
    onStopped: () => stopped(),
  });
  const send = (c: Record<string, unknown>) => input.write(JSON.stringify(c) + '\n');

  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: '{title} |{bar}| {pos} / {dur} {state}',
          hideCursor: true,
          clearOnComplete: false,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const say = (line: string) => {
    if (bar) bar.stop();
    process.stderr.write(line + '\n');
  };
  const mmss = (s: number | undefined) =>
    s === undefined ? '--:--' : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

  let failures = 0;
  let index = 0; // the current item: the first that has not ended
  const ended = new Set<string>(); // items finished, cancelled, or skipped because their decoder failed
  let played = 0; // items handed to `play`
  const socketPath = config.host.socket;
  const byId = new Map(items.map((it) => [it.id, it]));
  let started = 0; // items whose decoder has been started
  /**
   * Keep decoders running for the current and the next item, and send `play` for each in order once its
   * decoder has arrived (so no silence precedes it); an item whose decoder failed is skipped.
   */
  const queueNext = () => {
    while (started < items.length && started < index + 2) {
      const it = items[started++]!;
      startDecoder(socketPath, it, (why) => {
        if (it.failed) return;
        it.failed = why;
        failures++;
        say(`speakerd play: ${it.file}: ${why}`);
        queueNext();
      });
    }
    while (played < items.length && played < index + 2) {
      const it = items[played]!;
      if (it.failed && !it.arrived) {
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

  let buf = '';
  output.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const e = JSON.parse(buf.slice(0, nl)) as Record<string, any>;
      buf = buf.slice(nl + 1);
      const it = typeof e.id === 'string' ? byId.get(e.id) : undefined;
      switch (e.type) {
        case 'playing':
        case 'paused':
          if (!it) break;
          if (bar) {
            if (!bar.isActive) bar.start(Math.max(1, Math.round(it.duration ?? 1)), 0, {});
            bar.update(Math.min(Math.round(e.position), bar.getTotal()), {
              title: basename(it.file).slice(0, 30),
              pos: mmss(e.position),
              dur: mmss(it.duration),
              state: e.type === 'paused' ? '(paused)' : '',
            });
          } else if (e.type === 'playing' && !it.announced) {
            it.announced = true;
            say(`playing ${it.file}${it.duration === undefined ? '' : ` (${mmss(it.duration)})`}`);
          }
          break;
        case 'finished':
        case 'stillborn':
          if (!it) break;
          ended.add(it.id);
          if (bar) bar.stop();
          queueNext();
          break;
        case 'arrived':
          if (it) it.arrived = true;
          queueNext();
          break;
        case 'error':
          if (it && !it.failed && !it.arrived) {
            it.failed = `${e.code}: ${e.message}`;
            failures++;
            say(`speakerd play: ${it.file}: cannot decode (${e.message})`);
            queueNext();
          } else say(`speakerd play: ${e.code}: ${e.message}`);
          break;
        case 'backend':
          say(`speakerd play: output ${e.state}: ${e.message}`);
          break;
      }
    }
  });

  try {
    await engine.start();
  } catch (err) {
    await engine.stop('start-up failed');
    process.stderr.write(`speakerd play: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
  const onSignal = () => void engine.stop('interrupted');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // keys, only when stdin is a terminal: space pauses/resumes, n skips, q quits. EOF on stdin changes nothing.
  if (process.stdin.isTTY) {
    emitKeypressEvents(process.stdin);
    process.stdin.setRawMode(true);
    process.stdin.on('keypress', (_s: string, key: { name?: string; ctrl?: boolean }) => {
      if (key.ctrl && key.name === 'c') return void engine.stop('interrupted');
      if (key.name === 'space') {
        paused = !paused;
        send({ type: paused ? 'pause' : 'resume' });
      } else if (key.name === 'n') {
        const it = items[index];
        if (it) send({ type: 'cancel', id: it.id });
      } else if (key.name === 'q') {
        void engine.stop('quit');
      }
    });
    say('keys: space pause/resume, n next, q quit');
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
  if (process.stdin.isTTY) process.stdin.setRawMode(false);
  for (const it of items) it.decoder?.kill();
  await engine.stop('done');
  bar?.stop();
  return failures > 0 ? EXIT_FAILURE : EXIT_OK;
}
