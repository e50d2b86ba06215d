// The `realtime` option of the rtp backend's native sender thread and of the alsa backend's writer thread: the
// built speakerd binary plays a track while the test reads the scheduling policy of each of its threads from
// /proc/<pid>/task/<tid>/stat (field 40 rt_priority, field 41 policy: 1 = SCHED_FIFO) and its timer slack from
// timerslack_ns. The refused case runs speakerd without CAP_SYS_NICE (setpriv) and with RLIMIT_RTPRIO 0
// (prlimit): sched_setscheduler fails with EPERM, speakerd says so in one line and plays on.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { loadBinding } from '../packages/plugin-alsa/src/binding.js';
import { readCapture } from '../packages/plugin-alsa/test/helpers.js';
import { Receiver } from '../packages/plugin-rtp/test/helpers.js';
import { SPEAKERD, tempDir } from './helpers/cli.js';
import { noise } from './helpers/pcm.js';
import { decoder, Speakerd } from './helpers/speakerd.js';
import { haveCapability, haveTool } from './helpers/tools.js';

const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
const SCHED_FIFO = 1;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

interface ThreadSched {
  tid: number;
  name: string;
  policy: number;
  rtPriority: number;
  /** undefined when timerslack_ns cannot be read */
  slackNs: number | undefined;
}

/** Every thread of `pid`: name, policy (stat field 41), rt_priority (field 40), timer slack. */
function threadsOf(pid: number): ThreadSched[] {
  const out: ThreadSched[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      // the fields after "(comm)" start at field 3
      const rest = stat
        .slice(close + 2)
        .trim()
        .split(/\s+/);
      let slackNs: number | undefined;
      try {
        slackNs = Number(readFileSync(`/proc/${pid}/task/${t}/timerslack_ns`, 'utf8').trim());
      } catch {
        slackNs = undefined;
      }
      out.push({ tid: Number(t), name, rtPriority: Number(rest[40 - 3]), policy: Number(rest[41 - 3]), slackNs });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Wait (while the track plays) for the thread called `name` to exist; then all of the threads. */
async function sampleWhile(pid: number, name: string, ms = 8000): Promise<{ thread: ThreadSched; all: ThreadSched[] }> {
  const end = Date.now() + ms;
  for (;;) {
    const all = threadsOf(pid);
    const thread = all.find((t) => t.name === name);
    if (thread) return { thread, all };
    if (Date.now() > end)
      throw new Error(`no thread "${name}" in ${pid}: ${all.map((t) => t.name).join(', ') || '(none)'}`);
    await sleep(5);
  }
}

/** speakerd (built binary) under an optional wrapper command (setpriv …), driven like Speakerd.start does. */
async function startSpeakerd(config: Record<string, unknown>, wrapper: string[] = []): Promise<Speakerd> {
  const { dir } = tempDir('speakerd-rt-');
  const socket = join(dir, 'run', 'decoders.sock');
  writeFileSync(join(dir, 'speakerrc.json'), JSON.stringify({ socket, ...config }, null, 2));
  const args = [SPEAKERD, '--allow-root', '--config', join(dir, 'speakerrc.json'), '--log-level', 'debug'];
  const [cmd, ...pre] = wrapper.length ? [...wrapper, process.execPath] : [process.execPath];
  const child = spawn(cmd!, [...pre, ...args], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  const s = new Speakerd(child, dir, socket);
  cleanups.push(() => s.dispose());
  await s.ready();
  return s;
}

/** The pid of speakerd itself: the child, or (under a wrapper that execs) the same pid. */
function pidOf(s: Speakerd): number {
  return s.child.pid!;
}

/** The log line (JSON) whose msg contains `text`, or undefined. */
function logLine(s: Speakerd, text: string): Record<string, unknown> | undefined {
  for (const line of s.stderr.split('\n')) {
    if (!line.includes(text)) continue;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return { msg: line };
    }
  }
  return undefined;
}

// ------------------------------------------------------------------------------------------ what is possible here

const isRoot = process.getuid?.() === 0;
/** This machine grants SCHED_FIFO to this process (root with CAP_SYS_NICE, not confined by a container). */
const canFifo = (() => {
  const r = spawnSync('chrt', ['-f', '20', 'true'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
})();
/**
 * A wrapper under which sched_setscheduler gets EPERM: RLIMIT_RTPRIO 0 (prlimit; an unprivileged process may have
 * SCHED_FIFO up to it) and, as root, CAP_SYS_NICE taken away (setpriv). Undefined (the tests skip, saying why)
 * when the tools are missing.
 */
function refusingWrapper(): string[] | undefined {
  if (!haveTool('prlimit', ['prlimit', '--version'])) return undefined;
  const prlimit = ['prlimit', '--rtprio=0:0', '--'];
  if (!isRoot) return prlimit;
  if (!haveTool('setpriv', ['setpriv', '--version'])) return undefined;
  return [...prlimit, 'setpriv', '--inh-caps=-sys_nice', '--bounding-set=-sys_nice', '--'];
}

const RTP_ADDON = join(import.meta.dirname, '..', 'packages', 'plugin-rtp', 'build', 'Release', 'speakerd_rtp.node');
const haveRtp = haveCapability('the native rtp sender', existsSync(RTP_ADDON), `${RTP_ADDON} is not built`);
const fifoOk =
  haveCapability('root', isRoot, 'the test runs as uid ' + String(process.getuid?.())) &&
  haveCapability('SCHED_FIFO', canFifo, '"chrt -f 20 true" fails here');

const alsaWhy = loadBinding().why;
const haveAlsa =
  haveCapability('ALSA', !alsaWhy, alsaWhy ?? '') &&
  haveCapability(
    'the ALSA test PCMs',
    (process.env.ALSA_CONFIG_PATH ?? '').includes('fixtures/alsa'),
    'ALSA_CONFIG_PATH',
  );

// ------------------------------------------------------------------------------------------ rtp

async function rtpPlay(realtime: boolean | 'auto', wrapper: string[] = []) {
  const rx = await Receiver.open();
  cleanups.push(() => rx.close());
  const s = await startSpeakerd({ backend: 'rtp', format: CD, rtp: { port: rx.port, realtime } }, wrapper);
  const pcm = noise(44100 * 4 * 2, 7); // 2 s
  const r = await decoder(s.socket, { id: 'a', ...CD }, pcm);
  expect(r.reply).toEqual({ ok: true });
  s.send({ type: 'play', id: 'a' });
  await sleep(500);
  const sample = await sampleWhile(pidOf(s), 'speakerd-rtp');
  await s.waitFor((e) => e.type === 'finished' && e.id === 'a', 20000);
  await sleep(1500); // 'finished' comes up to earlyFinishMs early: the last packets play out
  expect(await s.close()).toBe(0);
  await sleep(200);
  return { s, rx, pcm, ...sample };
}

describe.skipIf(!haveRtp)('rtp: realtime option of the native sender thread', () => {
  it.skipIf(!fifoOk)(
    'realtime: true as root: the sender thread is SCHED_FIFO priority 20, 1 ns timer slack',
    async () => {
      const { s, thread, all } = await rtpPlay(true);
      console.log(`rtp realtime true: ${JSON.stringify(thread)}`);
      expect(thread).toMatchObject({ policy: SCHED_FIFO, rtPriority: 20 });
      if (thread.slackNs !== undefined) expect(thread.slackNs).toBe(1);
      // only that thread
      expect(all.filter((t) => t.policy !== 0).map((t) => t.name)).toEqual(['speakerd-rtp']);
      expect(logLine(s, 'real-time scheduling for the')).toMatchObject({ level: 30 });
    },
  );

  it('realtime: false: no thread is real-time, the timer slack is left alone', async () => {
    const { s, thread, all } = await rtpPlay(false);
    expect(all.filter((t) => t.policy !== 0)).toEqual([]);
    if (thread.slackNs !== undefined) expect(thread.slackNs).not.toBe(1);
    expect(s.stderr).not.toContain('real-time scheduling');
  });

  const refusing = refusingWrapper();
  it.skipIf(!refusing)('refused (no CAP_SYS_NICE, rtprio 0): "auto" logs one info line, plays the track', async () => {
    const { s, rx, thread, all, pcm } = await rtpPlay('auto', refusing);
    const line = logLine(s, 'real-time scheduling was not permitted');
    console.log(`rtp refused: ${JSON.stringify(line)}`);
    expect(line).toMatchObject({ level: 30, code: 'EPERM', errno: 1, realtime: 'auto' });
    expect(s.stderr.split('real-time scheduling was not permitted').length - 1).toBe(1);
    expect(all.filter((t) => t.policy !== 0)).toEqual([]);
    // the timer slack needs no privilege
    if (thread.slackNs !== undefined) expect(thread.slackNs).toBe(1);
    // every byte of the track went out (L16 is big-endian on the wire)
    const payload = Buffer.concat(rx.rtp.map((p) => p.payload));
    const want = Buffer.from(pcm);
    want.swap16();
    expect(payload.length).toBe(want.length);
    expect(payload.equals(want)).toBe(true);
  });

  it.skipIf(!refusing)('refused with realtime: true: a warning, and the track plays', async () => {
    const { s } = await rtpPlay(true, refusing);
    expect(logLine(s, 'real-time scheduling was not permitted')).toMatchObject({ level: 40, code: 'EPERM' });
    expect(s.events.some((e) => e.type === 'finished' && e.id === 'a')).toBe(true);
  });
});

// ------------------------------------------------------------------------------------------ alsa

async function alsaPlay(realtime: boolean | 'auto', wrapper: string[] = []) {
  const s = await startSpeakerd(
    { backend: 'alsa', alsa: { device: 'speakerd_capture:./out.raw', realtime }, format: CD },
    wrapper,
  );
  // sampled from play on, every 5 ms: the writer thread lives only while the device is open (a 2 s track sampled
  // from 300 ms after play on at 50 ms steps was missed once on a busy CI machine)
  const pcm = noise(44100 * 4 * 3, 9);
  const r = await decoder(s.socket, { id: 'a', ...CD }, pcm, { chunk: 7001 });
  expect(r.reply).toEqual({ ok: true });
  s.send({ type: 'play', id: 'a' });
  const sample = await sampleWhile(pidOf(s), 'speakerd-alsa');
  await s.waitFor((e) => e.type === 'finished' && e.id === 'a', 20000);
  const file = join(s.dir, 'out.raw');
  const end = Date.now() + 10000;
  while (readCapture(file).length < pcm.length && Date.now() < end) await sleep(50);
  const got = readCapture(file);
  expect(await s.close()).toBe(0);
  return { s, got, pcm, ...sample };
}

describe.skipIf(!haveAlsa)('alsa: realtime option of the writer thread', () => {
  it.skipIf(!fifoOk)(
    'realtime: true as root: the writer thread is SCHED_FIFO priority 20, 1 ns timer slack',
    async () => {
      const { s, thread, all, got, pcm } = await alsaPlay(true);
      console.log(`alsa realtime true: ${JSON.stringify(thread)}`);
      expect(thread).toMatchObject({ policy: SCHED_FIFO, rtPriority: 20 });
      if (thread.slackNs !== undefined) expect(thread.slackNs).toBe(1);
      expect(all.filter((t) => t.policy !== 0).map((t) => t.name)).toEqual(['speakerd-alsa']);
      expect(logLine(s, 'real-time scheduling for the')).toMatchObject({ level: 30 });
      expect(Buffer.compare(got, pcm)).toBe(0);
    },
  );

  it('realtime: false: no thread is real-time, the timer slack is left alone', async () => {
    const { s, thread, all, got, pcm } = await alsaPlay(false);
    expect(all.filter((t) => t.policy !== 0)).toEqual([]);
    if (thread.slackNs !== undefined) expect(thread.slackNs).not.toBe(1);
    expect(s.stderr).not.toContain('real-time scheduling');
    expect(Buffer.compare(got, pcm)).toBe(0);
  });

  const refusing = refusingWrapper();
  it.skipIf(!refusing)('refused (no CAP_SYS_NICE, rtprio 0): "auto" logs one info line, plays byte-exact', async () => {
    const { s, thread, all, got, pcm } = await alsaPlay('auto', refusing);
    const line = logLine(s, 'real-time scheduling was not permitted');
    console.log(`alsa refused: ${JSON.stringify(line)}`);
    expect(line).toMatchObject({ level: 30, code: 'EPERM', errno: 1, realtime: 'auto' });
    expect(s.stderr.split('real-time scheduling was not permitted').length - 1).toBe(1);
    expect(all.filter((t) => t.policy !== 0)).toEqual([]);
    if (thread.slackNs !== undefined) expect(thread.slackNs).toBe(1);
    expect(Buffer.compare(got, pcm)).toBe(0);
  });
});
