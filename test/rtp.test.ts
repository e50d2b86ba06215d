import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SPEAKERD, tempDir } from './helpers/cli.js';
import { decoder, Speakerd } from './helpers/speakerd.js';
import { noise } from './helpers/pcm.js';
import { haveCapability, haveTool } from './helpers/tools.js';
import { exitOf, ffmpegReceiver, freePortPair, gstReceiver, udpBound } from './helpers/udp.js';
import { canUseNetns, netns } from './helpers/netns.js';
import { Receiver } from '../packages/plugin-rtp/test/helpers.js';

const CD = { encoding: 's16le', rate: 44100, channels: 2 };
let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const NATIVE_ADDON = join(import.meta.dirname, '..', 'packages', 'plugin-rtp', 'build', 'Release', 'speakerd_rtp.node');
/** The rtp backend's native sender is built (speakerd uses it on the real clock unless rtp.native is false). */
function haveNativeSender(): boolean {
  return haveCapability('the native rtp sender', existsSync(NATIVE_ADDON), `${NATIVE_ADDON} is not built`);
}

function swap16(b: Uint8Array): Buffer {
  const out = Buffer.from(b);
  out.swap16();
  return out;
}

async function playOne(s: Speakerd, id: string, pcm: Uint8Array) {
  const r = await decoder(s.socket, { id, ...CD }, pcm);
  expect(r.reply).toEqual({ ok: true });
  s.send({ type: 'play', id });
  await s.waitFor((e) => e.type === 'finished' && e.id === id, 20000);
}

describe('rtp backend end to end', () => {
  it('sends standard RTP the receiver can check packet by packet, answers recipient commands, BYE at exit', async () => {
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const s = await Speakerd.start({ backend: 'rtp', format: CD, rtp: { port: rx.port, sdp: 'stream.sdp' } });
    cleanups.push(() => s.dispose());
    expect(s.events[0]).toMatchObject({ type: 'ready', backend: 'rtp', format: { encoding: 's16be' } });
    const sdp = readFileSync(join(s.dir, 'stream.sdp'), 'utf8');
    expect(sdp).toContain(`m=audio ${rx.port} RTP/AVP 10`);
    // the real clock: the native sender thread, when it is built (said once, at info)
    if (existsSync(NATIVE_ADDON)) await s.untilLogged('rtp sender: native thread');

    const rx2 = await Receiver.open();
    cleanups.push(() => rx2.close());
    const added = await s.request({ type: 'rtp.add-recipient', address: '127.0.0.1', port: rx2.port });
    expect(added).toMatchObject({
      type: 'rtp.add-recipient',
      recipients: [
        { address: '127.0.0.1', port: rx.port },
        { address: '127.0.0.1', port: rx2.port },
      ],
    });
    const bad = await s.request({ type: 'rtp.add-recipient', address: '127.0.0.1', port: 70000 });
    expect(bad).toMatchObject({ type: 'error', code: 'bad-command' });

    const a = noise(44100 * 4 * 3, 11); // 3 s
    await playOne(s, 'a', a);
    const removed = await s.request({ type: 'rtp.remove-recipient', address: '127.0.0.1', port: rx2.port });
    expect(removed.recipients).toEqual([{ address: '127.0.0.1', port: rx.port }]);
    await sleep(1500); // a's last second plays out, the backend goes idle
    const b = noise(44100 * 2, 12);
    const nA = rx.rtp.length;
    await playOne(s, 'b', b);
    await sleep(1500);
    expect(await s.close()).toBe(0);
    await sleep(200);

    const p = rx.rtp;
    for (let i = 0; i < p.length; i++) {
      expect(p[i]!.pt).toBe(10);
      expect(p[i]!.ssrc).toBe(p[0]!.ssrc);
      if (i > 0) expect(p[i]!.seq).toBe((p[i - 1]!.seq + 1) & 0xffff);
      if (i > 0 && i !== nA) expect((p[i]!.ts - p[i - 1]!.ts) >>> 0).toBe(p[i - 1]!.payload.length / 4);
    }
    expect(p.map((x, i) => (x.marker ? i : -1)).filter((i) => i >= 0)).toEqual([0, nA]);
    // idle in between: the timestamp moved on by (at least) the idle time
    expect(((p[nA]!.ts - p[nA - 1]!.ts) >>> 0) / 44100).toBeGreaterThan(0.5);
    // whole packets (360 frames, 1440 bytes), whatever chunks the decoder and the host moved: only each track's
    // last packet before the stream stops may be short
    const short = (ps: typeof p) => ps.map((x) => x.payload.length).filter((n) => n !== 1440);
    expect(short(p.slice(0, nA - 1))).toEqual([]);
    expect(short(p.slice(nA, -1))).toEqual([]);
    expect(Buffer.concat(p.slice(0, nA).map((x) => x.payload)).equals(swap16(a))).toBe(true);
    expect(Buffer.concat(p.slice(nA).map((x) => x.payload)).equals(swap16(b))).toBe(true);
    // rx2 was removed at 'finished' (up to earlyFinishMs before the end): it got a prefix of a, in order
    const got2 = Buffer.concat(rx2.rtp.map((x) => x.payload));
    expect(got2.length).toBeGreaterThan(0);
    expect(got2.equals(swap16(a).subarray(0, got2.length))).toBe(true);
    // RTCP: SR + SDES during the run (or at least at the end), BYE last
    const last = rx.rtcp[rx.rtcp.length - 1]!;
    const types: number[] = [];
    for (let off = 0; off < last.length; off += (last.readUInt16BE(off + 2) + 1) * 4) types.push(last[off + 1]!);
    expect(types.slice(1)).toEqual([202, 203]);
    expect([200, 201]).toContain(types[0]);
    expect(last.readUInt32BE(4)).toBe(p[0]!.ssrc);
  });

  it('native sender: pause and resume keep sequence +1 per packet sent, the marker after resume, exact PCM', async () => {
    if (!haveNativeSender()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const s = await Speakerd.start({ backend: 'rtp', format: CD, rtp: { port: rx.port } });
    cleanups.push(() => s.dispose());
    expect((await s.untilLogged('rtp sender: native thread')).match(/rtp sender: /g)).toHaveLength(1);
    const pcm = noise(44100 * 4 * 3, 41); // 3 s
    const r = await decoder(s.socket, { id: 'p', ...CD }, pcm);
    expect(r.reply).toEqual({ ok: true });
    s.send({ type: 'play', id: 'p' });
    await s.waitFor((e) => e.type === 'playing' && e.id === 'p', 10000);
    await sleep(800);
    s.send({ type: 'pause' });
    await s.waitFor((e) => e.type === 'paused', 5000);
    await sleep(300);
    const nPause = rx.rtp.length;
    await sleep(400);
    expect(rx.rtp.length).toBe(nPause); // nothing while paused (pauseMode stop)
    s.send({ type: 'resume' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'p', 20000);
    await sleep(1500);
    expect(await s.close()).toBe(0);
    await sleep(200);
    const p = rx.rtp;
    for (let i = 1; i < p.length; i++) {
      expect(p[i]!.seq).toBe((p[i - 1]!.seq + 1) & 0xffff);
      if (i !== nPause) expect((p[i]!.ts - p[i - 1]!.ts) >>> 0).toBe(p[i - 1]!.payload.length / 4);
    }
    expect(p.map((x, i) => (x.marker ? i : -1)).filter((i) => i >= 0)).toEqual([0, nPause]);
    expect(Buffer.concat(p.map((x) => x.payload)).equals(swap16(pcm))).toBe(true);
  });

  it('rtp.native: false uses the JavaScript sender (says why) and sends the same exact stream', async () => {
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const s = await Speakerd.start({ backend: 'rtp', format: CD, rtp: { port: rx.port, native: false } });
    cleanups.push(() => s.dispose());
    await s.untilLogged('rtp sender: JavaScript timers (rtp.native is false)');
    const pcm = noise(44100 * 4, 42);
    await playOne(s, 'j', pcm);
    await sleep(1500);
    expect(await s.close()).toBe(0);
    await sleep(200);
    const p = rx.rtp;
    for (let i = 1; i < p.length; i++) expect(p[i]!.seq).toBe((p[i - 1]!.seq + 1) & 0xffff);
    expect(p.map((x, i) => (x.marker ? i : -1)).filter((i) => i >= 0)).toEqual([0]);
    expect(Buffer.concat(p.map((x) => x.payload)).equals(swap16(pcm))).toBe(true);
  });

  it('keeps running when nothing listens (ECONNREFUSED): reports the backend lost, never exits', async () => {
    const port = freePortPair();
    const s = await Speakerd.start({ backend: 'rtp', format: CD, rtp: { port } });
    cleanups.push(() => s.dispose());
    await playOne(s, 'x', noise(44100 * 4, 3));
    await s.waitFor((e) => e.type === 'backend' && e.state === 'lost', 5000);
    const st = await s.status();
    expect(st.backend).toBe('rtp');
    expect(s.exitCode).toBeUndefined();
    expect(await s.close()).toBe(0);
  });

  it('ffmpeg plays the stream through the SDP file and returns exactly the PCM that was sent', async () => {
    if (!haveTool('ffmpeg', ['ffmpeg', '-version'])) return;
    const port = freePortPair();
    const s = await Speakerd.start({ backend: 'rtp', format: CD, rtp: { port, sdp: 'stream.sdp' } });
    cleanups.push(() => s.dispose());
    const out = join(s.dir, 'ffmpeg.raw');
    const rx = ffmpegReceiver(join(s.dir, 'stream.sdp'), out);
    const ff = rx.child;
    cleanups.push(() => void ff.kill('SIGKILL'));
    await udpBound(port);
    const pcm = noise(44100 * 4 * 2, 21); // 2 s
    await playOne(s, 'f', pcm);
    await sleep(1500);
    expect(await s.close()).toBe(0); // BYE ends ffmpeg's input
    const code = await exitOf(ff, 15000);
    const got = readFileSync(out);
    expect(rx.stderr).toBe('');
    expect(code).toBe(0);
    expect(got.length).toBe(pcm.length);
    expect(got.equals(swap16(pcm))).toBe(true);
  });

  it('GStreamer (udpsrc ! rtpjitterbuffer ! rtpL16depay) returns exactly the PCM that was sent', async () => {
    if (!haveTool('gst-launch-1.0', ['gst-launch-1.0', '--version'])) return;
    const port = freePortPair();
    const s = await Speakerd.start({ backend: 'rtp', format: CD, rtp: { port, sdp: 'stream.sdp' } });
    cleanups.push(() => s.dispose());
    // the caps come from the SDP file
    const out = join(s.dir, 'gst.raw');
    const gst = gstReceiver(join(s.dir, 'stream.sdp'), out).child;
    cleanups.push(() => void gst.kill('SIGKILL'));
    await udpBound(port);
    const pcm = noise(44100 * 4 * 2, 22);
    await playOne(s, 'g', pcm);
    await sleep(1500);
    gst.kill('SIGINT'); // -e: end of stream, the jitter buffer and the file are flushed
    await exitOf(gst, 10000);
    expect(await s.close()).toBe(0);
    const got = readFileSync(out);
    expect(got.length).toBe(pcm.length);
    expect(got.equals(swap16(pcm))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------- namespaces

/** A receiver script run inside the namespace: joins `group` (if any) and prints a summary at SIGTERM. */
const RECEIVER = `
const dgram = require('node:dgram');
const [port, group] = [Number(process.argv[1]), process.argv[2]];
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const chunks = []; let n = 0, markers = 0, seqOk = true, last;
s.on('message', (m) => {
  n++; if (m[1] & 0x80) markers++;
  const seq = m.readUInt16BE(2); if (last !== undefined && seq !== ((last + 1) & 0xffff)) seqOk = false; last = seq;
  chunks.push(m.subarray(12));
});
s.bind(port, group ? '0.0.0.0' : '0.0.0.0', () => {
  if (group) s.addMembership(group, '127.0.0.1');
  console.log('listening');
});
process.on('SIGTERM', () => {
  const all = Buffer.concat(chunks);
  console.log(JSON.stringify({ n, markers, seqOk, hash: require('node:crypto').createHash('sha256').update(all).digest('hex'), bytes: all.length }));
  process.exit(0);
});
`;

async function inNamespace(dest: string, mode: string) {
  const ns = netns();
  if (!ns) return;
  cleanups.push(() => ns.remove());
  const port = freePortPair();
  const rxProc = spawn(
    'ip',
    ns.exec([process.execPath, '-e', RECEIVER, String(port), mode === 'multicast' ? dest : '']),
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  cleanups.push(() => void rxProc.kill('SIGKILL'));
  let rxOut = '';
  rxProc.stdout!.on('data', (d: Buffer) => (rxOut += d.toString()));
  for (let i = 0; i < 200 && !rxOut.includes('listening'); i++) await sleep(25);
  expect(rxOut).toContain('listening');

  const { dir } = tempDir('speakerd-e2e-ns-');
  const socket = join(dir, 'run', 'decoders.sock');
  const cfg = { socket, backend: 'rtp', format: CD, rtp: { destination: dest, port, mode, ttl: 1, loop: true } };
  writeFileSync(join(dir, 'speakerrc.json'), JSON.stringify(cfg));
  const child = spawn(
    'ip',
    ns.exec([
      process.execPath,
      SPEAKERD,
      '--allow-root',
      '--config',
      join(dir, 'speakerrc.json'),
      '--log-level',
      'debug',
    ]),
    { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const s = new Speakerd(child as never, dir, socket);
  cleanups.push(() => s.dispose());
  await s.waitFor((e) => e.type === 'ready', 15000);
  const pcm = noise(44100 * 4, 31);
  await playOne(s, 'n', pcm);
  await sleep(1500);
  expect(await s.close()).toBe(0);
  rxProc.kill('SIGTERM');
  await exitOf(rxProc, 5000);
  const summary = JSON.parse(rxOut.trim().split('\n').pop()!) as {
    n: number;
    markers: number;
    seqOk: boolean;
    hash: string;
    bytes: number;
  };
  const { createHash } = await import('node:crypto');
  expect(summary.bytes).toBe(pcm.length);
  expect(summary.seqOk).toBe(true);
  expect(summary.markers).toBe(1);
  expect(summary.hash).toBe(createHash('sha256').update(swap16(pcm)).digest('hex'));
}

/** Inside the namespace: joins `group` on `iface` at `port` + 1 and prints the first RTCP SDES CNAME it gets. */
const CNAME_RECEIVER = `
const s = require('node:dgram').createSocket({ type: 'udp4', reuseAddr: true });
const [port, group, iface] = [Number(process.argv[1]), process.argv[2], process.argv[3]];
s.on('message', (m) => {
  for (let at = 0; at + 8 <= m.length; at += (m.readUInt16BE(at + 2) + 1) * 4) {
    if (m[at + 1] !== 202) continue;
    for (let i = at + 8; i + 2 <= m.length && m[i] !== 0; i += 2 + m[i + 1]) {
      if (m[i] === 1) { console.log(JSON.stringify({ cname: m.subarray(i + 2, i + 2 + m[i + 1]).toString() })); process.exit(0); }
    }
  }
});
s.bind(port + 1, () => { s.addMembership(group, iface); console.log('listening'); });
`;

describe('rtp source address: SDP o= and RTCP CNAME, inside a network namespace with a LAN-like interface', () => {
  it('o= and the CNAME name the address the stream leaves from (10.199.0.1), never 127.0.0.1', async () => {
    if (!haveCapability('network namespaces', canUseNetns(), 'needs root and "ip netns"')) return;
    const ns = netns('10.199.0.1/24');
    if (!ns) return;
    cleanups.push(() => ns.remove());
    const port = freePortPair();
    const group = '239.255.0.7';
    const rx = spawn('ip', ns.exec([process.execPath, '-e', CNAME_RECEIVER, String(port), group, '10.199.0.1']), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => void rx.kill('SIGKILL'));
    let rxOut = '';
    rx.stdout!.on('data', (d: Buffer) => (rxOut += d.toString()));
    for (let i = 0; i < 200 && !rxOut.includes('listening'); i++) await sleep(25);
    expect(rxOut).toContain('listening');

    const { dir } = tempDir('speakerd-e2e-origin-');
    const socket = join(dir, 'run', 'decoders.sock');
    const rtp = { destination: group, port, mode: 'multicast', ttl: 1, loop: true, sdp: 'stream.sdp' };
    writeFileSync(join(dir, 'speakerrc.json'), JSON.stringify({ socket, backend: 'rtp', format: CD, rtp }));
    const child = spawn(
      'ip',
      ns.exec([process.execPath, SPEAKERD, '--allow-root', '--config', join(dir, 'speakerrc.json')]),
      { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const s = new Speakerd(child as never, dir, socket);
    cleanups.push(() => s.dispose());
    await s.waitFor((e) => e.type === 'ready', 15000);
    await playOne(s, 'o', noise(44100, 5));
    const sdp = readFileSync(join(dir, 'stream.sdp'), 'utf8');
    expect(sdp).toMatch(/^o=- \d+ \d+ IN IP4 10\.199\.0\.1\r?$/m);
    for (let i = 0; i < 400 && !rxOut.includes('cname'); i++) await sleep(25);
    const { cname } = JSON.parse(rxOut.trim().split('\n').pop()!) as { cname: string };
    // RFC 3550 6.5.1: user@host, the host a fully qualified name or the numeric address of the sending interface
    const host = cname.split('@')[1] ?? '';
    expect(cname).toMatch(/^[^@\s]+@[^@\s]+$/);
    expect(host === '10.199.0.1' || host.includes('.')).toBe(true);
    expect(host).not.toBe('127.0.0.1');
    expect(await s.close()).toBe(0);
  });
});

describe('rtp multicast and broadcast, inside a network namespace', () => {
  it('multicast to 239.255.0.1 reaches a receiver that joined the group', async () => {
    if (!haveCapability('network namespaces', canUseNetns(), 'needs root and "ip netns"')) return;
    await inNamespace('239.255.0.1', 'multicast');
  });

  it('broadcast to 127.255.255.255 (auto-detected) reaches a receiver', async () => {
    if (!haveCapability('network namespaces', canUseNetns(), 'needs root and "ip netns"')) return;
    await inNamespace('127.255.255.255', 'auto');
  });
});
