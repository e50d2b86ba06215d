#!/usr/bin/env node
// speakerd -> receiver latency on loopback (docs/multiroom.md): the built speakerd sends a track of silence with one
// full-scale click 2 s in; a tap (a second recipient, rtp.add-recipient) stamps the packet that carries the click
// when it arrives, and the receiver (GStreamer or ffmpeg, writing raw PCM to a pipe) stamps the click when it comes
// out. Latency = out - tap, per receiver, median of `RUNS` runs. Only 127.0.0.1 is used.
//   node test/bench/rtp-latency.mjs [runs]
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SPEAKERD = join(import.meta.dirname, '..', '..', 'packages', 'host', 'bin', 'speakerd.js');
const RUNS = Number(process.argv[2] ?? 5);
const RATE = 44100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

const CAPS = 'caps=application/x-rtp,media=audio,payload=10,encoding-name=L16,clock-rate=44100,channels=2';
/** GStreamer to stdout, rendering on the pipeline clock (as an audio sink would). */
const gst = (port, jitter) => [
  'gst-launch-1.0',
  [
    '-q',
    'udpsrc',
    `port=${port}`,
    CAPS,
    '!',
    'rtpjitterbuffer',
    ...jitter,
    '!',
    'rtpL16depay',
    '!',
    'fdsink',
    'fd=1',
    'sync=true',
  ],
];
/** ffmpeg reading the SDP file, raw s16be to stdout, each packet flushed. */
const ffmpeg = (sdp, flags) => [
  'ffmpeg',
  [
    '-hide_banner',
    '-loglevel',
    'error',
    ...flags,
    '-protocol_whitelist',
    'file,udp,rtp',
    '-i',
    sdp,
    '-f',
    's16be',
    '-flush_packets',
    '1',
    'pipe:1',
  ],
];

const RECEIVERS = {
  'GStreamer (rtpjitterbuffer default latency 200 ms, fdsink sync=true)': (port) => gst(port, []),
  'GStreamer (rtpjitterbuffer latency=20, fdsink sync=true)': (port) => gst(port, ['latency=20']),
  'ffmpeg (SDP file, defaults)': (port, sdp) => ffmpeg(sdp, []),
  'ffmpeg (SDP file, -fflags nobuffer -probesize 32 -analyzeduration 0)': (port, sdp) =>
    ffmpeg(sdp, ['-fflags', 'nobuffer', '-probesize', '32', '-analyzeduration', '0']),
};

function decoder(socket, header, pcm) {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    c.on('error', reject);
    c.on('data', resolve); // the answer comes once the header is taken; the PCM keeps streaming
    c.on('close', resolve);
    c.on('connect', () => {
      c.write(JSON.stringify(header) + '\n');
      c.end(pcm);
    });
  });
}

/** Index (in samples) of the first sample whose magnitude exceeds 10000, in big-endian 16-bit `buf`, or -1. */
function click(buf) {
  for (let i = 0; i + 1 < buf.length; i += 2) if (Math.abs(buf.readInt16BE(i)) > 10000) return i / 2;
  return -1;
}

async function once(name, make) {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-latency-'));
  const children = [];
  try {
    const port = 20000 + 2 * Math.floor(Math.random() * 20000);
    const socket = join(dir, 'decoders.sock');
    const cfg = {
      socket,
      backend: 'rtp',
      format: { encoding: 's16le', rate: RATE, channels: 2 },
      rtp: { port, sdp: 'stream.sdp' },
    };
    writeFileSync(join(dir, 'speakerrc.json'), JSON.stringify(cfg));
    const sd = spawn(process.execPath, [SPEAKERD, '--allow-root', '--config', join(dir, 'speakerrc.json')], {
      cwd: dir,
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    children.push(sd);
    let events = '';
    sd.stdout.setEncoding('utf8').on('data', (d) => (events += d));
    for (let i = 0; i < 300 && !events.includes('"ready"'); i++) await sleep(20);
    // the tap: stamps the first packet whose payload holds the click
    const tap = createSocket('udp4');
    let tapAt;
    tap.on('message', (m) => {
      if (tapAt === undefined && click(m.subarray(12)) >= 0) tapAt = now();
    });
    await new Promise((r) => tap.bind(0, '127.0.0.1', r));
    sd.stdin.write(
      JSON.stringify({ type: 'rtp.add-recipient', address: '127.0.0.1', port: tap.address().port }) + '\n',
    );
    const [cmd, args] = make(port, join(dir, 'stream.sdp'));
    const rx = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(rx);
    let outAt;
    let carry = Buffer.alloc(0);
    rx.stdout.on('data', (d) => {
      if (outAt !== undefined) return;
      const b = Buffer.concat([carry, d]);
      if (click(b.subarray(0, b.length & ~1)) >= 0) outAt = now();
      carry = b.subarray(b.length & ~1);
    });
    await sleep(1500); // the receiver is listening (ffmpeg probes its input first)
    const pcm = Buffer.alloc(RATE * 4 * 4); // 4 s of silence, one click at 2 s
    for (let i = 0; i < 64; i++) for (const ch of [0, 2]) pcm.writeInt16LE(30000, (2 * RATE + i) * 4 + ch);
    await decoder(socket, { id: 't', encoding: 's16le', rate: RATE, channels: 2 }, pcm);
    sd.stdin.write(JSON.stringify({ type: 'play', id: 't' }) + '\n');
    for (let i = 0; i < 400 && (outAt === undefined || tapAt === undefined); i++) await sleep(20);
    rx.kill('SIGKILL');
    sd.stdin.end();
    tap.close();
    await sleep(300);
    sd.kill('SIGKILL');
    return tapAt !== undefined && outAt !== undefined ? outAt - tapAt : NaN;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [name, make] of Object.entries(RECEIVERS)) {
  const ms = [];
  for (let r = 0; r < RUNS; r++) ms.push(await once(name, make));
  const sorted = [...ms].sort((a, b) => a - b);
  const f = (x) => x.toFixed(1);
  console.log(
    `${name}: median ${f(sorted[Math.floor(sorted.length / 2)])} ms, min ${f(sorted[0])}, max ${f(sorted[sorted.length - 1])} (${RUNS} runs: ${ms.map(f).join(' ')})`,
  );
}
