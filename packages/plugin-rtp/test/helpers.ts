import { onTestFinished } from 'vitest';
import plugin from '../src/index.js';
import { RtpBackend } from '../src/backend.js';
import type { Destination, SendDone, Transport, TransportFactory } from '../src/transport.js';
import {
  VirtualClock,
  bytesPerFrame,
  registerPluginServices,
  type Clock,
  type PluginContext,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import { MemoryLogger, RecordingEvents, noise } from '@speakerd/plugin-sdk/testing';
import { container } from 'tsyringe';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

/** A collecting logger (kept under its old name for the tests that use it). */
export function collectingLogger(): MemoryLogger {
  return new MemoryLogger();
}

/** Host events whose wake() runs `onWake` at once (the host does it in a microtask: same wake-up). */
export class TestEvents extends RecordingEvents {
  onWake: () => void = () => {};
  override wake(): void {
    super.wake();
    this.onWake();
  }
}

export interface Harness {
  backend: RtpBackend;
  clock: VirtualClock;
  log: MemoryLogger;
  events: TestEvents;
  dir: string;
  format: SampleFormat;
  cleanup(): void;
}

/**
 * Make the backend through a child container, the way the host does (UDP transport), or with `transport`, and
 * start it up in the host's order: init → negotiate → configure (unless `configure: false`).
 */
export async function makeBackend(
  raw: Record<string, unknown>,
  requested: SampleFormat = CD,
  transport?: TransportFactory,
  clock = new VirtualClock(1000),
  { configure = true }: { configure?: boolean } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-rtp-'));
  const log = collectingLogger();
  const events = new TestEvents();
  const context: PluginContext = { configDir: dir, pluginName: 'rtp', hostVersion: '0.0.0-test' };
  const opts = plugin.options.parse(raw);
  let backend: RtpBackend;
  if (transport) {
    backend = new RtpBackend(opts, log, clock as Clock, events, context, transport);
  } else {
    const c = registerPluginServices(container.createChildContainer(), {
      options: opts,
      logger: log,
      clock,
      events,
      context,
    });
    backend = c.resolve<RtpBackend>(plugin.backend as never);
  }
  await backend.init();
  const format = backend.negotiate(requested);
  if (configure) await backend.configure(format);
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  // also when the test fails before its own cleanup() (a failed run left its directories in /tmp)
  onTestFinished(cleanup);
  return { backend, clock, log, events, dir, format, cleanup };
}

/**
 * A host stand-in: on every wake() (and when asked), write as much of `source` as the backend takes, then end the
 * fill (endFill); returns a function that tells how many frames were handed over.
 */
export function feeder(h: Harness, source: Uint8Array | (() => Uint8Array | undefined)) {
  const bpf = bytesPerFrame(h.format);
  let off = 0;
  let handed = 0;
  const fill = () => {
    writeAll();
    h.backend.endFill();
  };
  const writeAll = () => {
    if (typeof source === 'function') {
      for (;;) {
        const w = h.backend.writable();
        if (w <= 0) return;
        const chunk = source();
        if (!chunk) return;
        const n = Math.min(w, chunk.length / bpf);
        const took = h.backend.write(chunk.subarray(0, n * bpf));
        handed += took;
        if (took === 0) return;
      }
    }
    const frames = source.length / bpf;
    while (off < frames) {
      const w = h.backend.writable();
      if (w <= 0) return;
      const n = Math.min(w, frames - off);
      const took = h.backend.write(source.subarray(off * bpf, (off + n) * bpf));
      off += took;
      handed += took;
      if (took === 0) return;
    }
  };
  h.events.onWake = fill;
  return { fill, handed: () => handed, done: () => typeof source !== 'function' && off * bpf >= source.length };
}

export interface RtpPacket {
  version: number;
  padding: boolean;
  marker: boolean;
  pt: number;
  seq: number;
  ts: number;
  ssrc: number;
  payload: Buffer;
  at: number;
}

export function parseRtp(b: Buffer, at = 0): RtpPacket {
  const cc = b[0]! & 0x0f;
  return {
    version: b[0]! >> 6,
    padding: (b[0]! & 0x20) !== 0,
    marker: (b[1]! & 0x80) !== 0,
    pt: b[1]! & 0x7f,
    seq: b.readUInt16BE(2),
    ts: b.readUInt32BE(4),
    ssrc: b.readUInt32BE(8),
    payload: b.subarray(12 + cc * 4),
    at,
  };
}

export interface RtcpPart {
  pt: number;
  count: number;
  body: Buffer;
}

export function parseRtcp(b: Buffer): RtcpPart[] {
  const out: RtcpPart[] = [];
  let off = 0;
  while (off + 4 <= b.length) {
    const len = (b.readUInt16BE(off + 2) + 1) * 4;
    out.push({ pt: b[off + 1]!, count: b[off]! & 0x1f, body: b.subarray(off, off + len) });
    off += len;
  }
  return out;
}

/** A UDP receiver pair on 127.0.0.1 (or ::1): RTP on an even port, RTCP on the next one. */
export class Receiver {
  rtp: RtpPacket[] = [];
  rtcp: Buffer[] = [];
  constructor(
    readonly port: number,
    private readonly a: Socket,
    private readonly b: Socket,
  ) {
    a.on('message', (m) => this.rtp.push(parseRtp(Buffer.from(m), performance.now())));
    b.on('message', (m) => this.rtcp.push(Buffer.from(m)));
  }
  static async open(host = '127.0.0.1'): Promise<Receiver> {
    const type = host.includes(':') ? 'udp6' : 'udp4';
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = 20000 + 2 * Math.floor(Math.random() * 20000);
      const a = createSocket(type);
      const b = createSocket(type);
      try {
        await bind(a, port, host);
        await bind(b, port + 1, host);
        return new Receiver(port, a, b);
      } catch {
        a.close();
        try {
          b.close();
        } catch {
          /* not bound */
        }
      }
    }
    throw new Error('no free port pair');
  }
  async settle(ms = 150): Promise<void> {
    let last = -1;
    while (last !== this.rtp.length + this.rtcp.length) {
      last = this.rtp.length + this.rtcp.length;
      await sleep(ms);
    }
  }
  close(): void {
    this.a.close();
    this.b.close();
  }
}

function bind(s: Socket, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, host, () => {
      s.off('error', reject);
      resolve();
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Advance a virtual clock in steps, letting real I/O (the kernel, the receiver) run between them. */
export async function run(clock: VirtualClock, ms: number, stepMs = 20): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(Math.min(stepMs, ms - t));
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** Deterministic noise (the SDK test kit's), seeded so each test's stream is its own. */
export function pattern(bytes: number, seed = 0): Uint8Array {
  return noise(bytes, (seed * 2654435761) >>> 0 || 1);
}

/** A transport that keeps nothing: `onPacket` sees every RTP packet (valid only during the call). */
export class FakeTransport implements Transport {
  recipients: Destination[] = [{ address: '192.0.2.1', port: 5004 }];
  rtcp: Buffer[] = [];
  constructor(public onPacket: (p: Buffer) => void = () => {}) {}
  sendRtp(packet: Buffer, done: SendDone): number {
    this.onPacket(packet);
    done(null);
    return 1;
  }
  async sendRtcp(packet: Buffer): Promise<void> {
    this.rtcp.push(Buffer.from(packet));
  }
  async sendTo(): Promise<void> {}
  async add(d: Destination): Promise<Destination> {
    if (!this.recipients.some((r) => r.address === d.address && r.port === d.port)) this.recipients.push(d);
    return d;
  }
  async remove(d: Destination): Promise<boolean> {
    const before = this.recipients.length;
    this.recipients = this.recipients.filter((r) => !(r.address === d.address && r.port === d.port));
    return this.recipients.length < before;
  }
  list(): Destination[] {
    return [...this.recipients];
  }
  localAddress(): string | undefined {
    return '192.0.2.2';
  }
  async close(): Promise<void> {}
}
