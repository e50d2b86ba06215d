import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isSpeakerdError } from '@speakerd/plugin-sdk';
import { CD, Receiver, feeder, makeBackend, parseRtcp, pattern, run, sleep, type RtpPacket } from './helpers.js';

let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function setup(extra: Record<string, unknown> = {}, host = '127.0.0.1') {
  const rx = await Receiver.open(host);
  const h = await makeBackend({ destination: host, port: rx.port, sdp: 'stream.sdp', ...extra });
  cleanups.push(
    () => rx.close(),
    () => h.cleanup(),
    () => h.backend.close(),
  );
  return { rx, h };
}

/** Checks that hold for any run of packets from one talkspurt onwards. */
function checkStream(packets: RtpPacket[], bpf: number, pt: number) {
  const ssrc = packets[0]!.ssrc;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!;
    expect(p.version).toBe(2);
    expect(p.padding).toBe(false);
    expect(p.pt).toBe(pt);
    expect(p.ssrc).toBe(ssrc);
    expect(p.payload.length % bpf).toBe(0);
    if (i > 0) expect(p.seq).toBe((packets[i - 1]!.seq + 1) & 0xffff);
  }
}

describe('RTP on the wire (real UDP on 127.0.0.1, virtual clock)', () => {
  it('sends L16 with PT 10, +1 sequence, timestamps in frames, marker on the first packet, payload = input', async () => {
    const { rx, h } = await setup();
    expect(h.format).toEqual({ encoding: 's16be', rate: 44100, channels: 2 });
    const info = h.backend.packetInfo!;
    expect(info).toMatchObject({ frames: 360, payloadType: 10, encodingName: 'L16' });
    const input = pattern(44100 * 4, 7); // one second
    await h.backend.activate(h.format);
    const feed = feeder(h, input);
    feed.fill();
    // the ring holds the lead plus one packet; everything beyond is not taken yet
    expect(h.backend.delay()).toBe(feed.handed());
    expect(h.backend.delay()).toBeLessThanOrEqual(882 + 4 * 360);
    await run(h.clock, 1200, 10);
    await rx.settle();
    expect(feed.done()).toBe(true);
    expect(h.backend.delay()).toBe(0);
    const p = rx.rtp;
    checkStream(p, 4, 10);
    expect(p[0]!.marker).toBe(true);
    expect(p.slice(1).some((x) => x.marker)).toBe(false);
    for (let i = 1; i < p.length; i++) expect((p[i]!.ts - p[i - 1]!.ts) >>> 0).toBe(p[i - 1]!.payload.length / 4);
    expect(p.slice(0, -1).every((x) => x.payload.length === 360 * 4)).toBe(true);
    expect(Buffer.concat(p.map((x) => x.payload)).equals(Buffer.from(input))).toBe(true);
  });

  it('marks the first packet after a pause and after idle, and moves the timestamp on by the time that passed', async () => {
    const { rx, h } = await setup({ leadMs: 20 });
    const input = pattern(44100 * 4, 3);
    await h.backend.activate(h.format);
    const feed = feeder(h, input);
    feed.fill();
    await run(h.clock, 300, 10);
    // pause the way the host does: flush what is queued, then pause
    const dropped = h.backend.flush();
    h.backend.pause!();
    const before = rx.rtp.length;
    await run(h.clock, 500, 10);
    await rx.settle();
    const atPause = rx.rtp.length;
    expect(atPause).toBeGreaterThanOrEqual(before);
    await run(h.clock, 200, 10);
    await rx.settle();
    expect(rx.rtp.length).toBe(atPause); // stop mode: nothing while paused, no sequence numbers used up
    h.backend.resume!();
    expect(dropped).toBeGreaterThan(0);
    feed.fill();
    await run(h.clock, 300, 10);
    await rx.settle();
    const p = rx.rtp;
    checkStream(p, 4, 10);
    const first = p[atPause]!;
    const last = p[atPause - 1]!;
    expect(first.marker).toBe(true);
    expect(p.filter((x) => x.marker).length).toBe(2);
    const gap = (first.ts - last.ts) >>> 0;
    const lastFrames = last.payload.length / 4;
    // ~700 ms passed between the end of the last packet and the restart
    expect(gap - lastFrames).toBeGreaterThan(0.6 * 44100);
    expect(gap - lastFrames).toBeLessThan(0.8 * 44100);

    // idle, then activate again: marker again, timestamp on by the idle time
    h.backend.flush();
    await h.backend.idle!();
    const atIdle = rx.rtp.length;
    await run(h.clock, 1000, 50);
    await h.backend.activate(h.format);
    feeder(h, pattern(4410 * 4, 9)).fill();
    await run(h.clock, 200, 10);
    await rx.settle();
    const again = rx.rtp[atIdle]!;
    expect(again.marker).toBe(true);
    expect(again.seq).toBe((rx.rtp[atIdle - 1]!.seq + 1) & 0xffff);
    expect(((again.ts - rx.rtp[atIdle - 1]!.ts) >>> 0) / 44100).toBeGreaterThan(0.9);
  });

  it('sends RTCP SR + SDES CNAME on port + 1, and BYE at close', async () => {
    const { rx, h } = await setup({ cname: 'test@example' });
    await h.backend.activate(h.format);
    const feed = feeder(h, () => new Uint8Array(4096));
    feed.fill();
    await run(h.clock, 8000, 50);
    await rx.settle();
    expect(rx.rtcp.length).toBeGreaterThanOrEqual(1);
    const parts = parseRtcp(rx.rtcp[0]!);
    expect(parts.map((x) => x.pt)).toEqual([200, 202]);
    const sr = parts[0]!.body;
    expect(sr[0]! >> 6).toBe(2);
    expect(sr.readUInt32BE(4)).toBe(rx.rtp[0]!.ssrc);
    const ntpSeconds = sr.readUInt32BE(8);
    const unix = ntpSeconds - 2_208_988_800;
    expect(Math.abs(unix * 1000 - h.clock.wallNow())).toBeLessThan(10_000);
    const srTs = sr.readUInt32BE(16);
    // the SR's RTP timestamp lies within the stream's timestamps
    const lastTs = rx.rtp[rx.rtp.length - 1]!.ts;
    expect((lastTs - srTs) >>> 0 < 44100 * 10).toBe(true);
    expect(sr.readUInt32BE(20)).toBeGreaterThan(0); // packet count
    const sdes = parts[1]!.body;
    expect(sdes[8]).toBe(1); // CNAME
    expect(sdes.subarray(10, 10 + sdes[9]!).toString()).toBe('test@example');
    expect(sdes.length % 4).toBe(0);
    h.backend.flush();
    await h.backend.close();
    await rx.settle();
    const last = parseRtcp(rx.rtcp[rx.rtcp.length - 1]!);
    expect(last.map((x) => x.pt)).toEqual([200, 202, 203]);
    expect(last[2]!.body.readUInt32BE(4)).toBe(rx.rtp[0]!.ssrc);
  });

  it('writes an SDP file that describes the stream', async () => {
    const { rx, h } = await setup();
    const sdp = readFileSync(join(h.dir, 'stream.sdp'), 'utf8');
    expect(sdp).toMatch(/^v=0\r\n/);
    expect(sdp).toContain('c=IN IP4 127.0.0.1\r\n');
    expect(sdp).toContain(`m=audio ${rx.port} RTP/AVP 10\r\n`);
    expect(sdp).toContain('a=rtpmap:10 L16/44100/2\r\n');
    expect(sdp).toContain('a=ptime:8\r\n');
  });

  it('negotiate() only answers; configure() writes the SDP file; writable()/delay() send nothing (JS sender)', async () => {
    const rx = await Receiver.open();
    const h = await makeBackend({ port: rx.port, sdp: 'stream.sdp' }, CD, undefined, undefined, { configure: false });
    cleanups.push(
      () => rx.close(),
      () => h.cleanup(),
      () => h.backend.close(),
    );
    const file = join(h.dir, 'stream.sdp');
    const l24 = { encoding: 's24le', rate: 48000, channels: 2 } as const;
    for (let i = 0; i < 100; i++) {
      expect(h.backend.negotiate(CD)).toEqual({ encoding: 's16be', rate: 44100, channels: 2 });
      expect(h.backend.negotiate(l24)).toEqual({ encoding: 's24be', rate: 48000, channels: 2 });
    }
    expect(existsSync(file)).toBe(false);
    expect(h.backend.sdp).toBeUndefined();
    expect(h.backend.packetInfo).toBeUndefined();
    await h.backend.configure(h.format);
    expect(readFileSync(file, 'utf8')).toContain('a=rtpmap:10 L16/44100/2\r\n');
    rmSync(file);
    h.backend.negotiate(l24);
    expect(existsSync(file)).toBe(false);
    expect(h.backend.packetInfo).toMatchObject({ frames: 360, payloadType: 10 });
    await h.backend.activate(h.format);
    const ring = 882 + 4 * 360; // the lead (20 ms) and 4 packets
    expect(h.backend.writable()).toBe(ring);
    expect(h.backend.write(pattern(1000 * 4, 8))).toBe(1000);
    for (let i = 0; i < 1000; i++) {
      expect(h.backend.writable()).toBe(ring - 1000);
      expect(h.backend.delay()).toBe(1000);
    }
    await rx.settle(50);
    expect(rx.rtp).toHaveLength(0); // the virtual clock has not moved: nothing is due
    h.backend.endFill();
    await run(h.clock, 200, 10);
    await rx.settle();
    expect(rx.rtp.length).toBeGreaterThan(0);
    expect(rx.rtp[0]!.pt).toBe(10);
  });

  it('negotiates big-endian L16/L24 and dynamic payload types', async () => {
    const cases: [Record<string, unknown>, object, object][] = [
      [{}, { encoding: 's16le', rate: 44100, channels: 1 }, { encoding: 's16be', pt: 11 }],
      [{}, { encoding: 's24le', rate: 48000, channels: 2 }, { encoding: 's24be', pt: 96, name: 'L24' }],
      [{ payloadType: 101 }, { encoding: 's16le', rate: 48000, channels: 2 }, { encoding: 's16be', pt: 101 }],
      [{}, { encoding: 'u8', rate: 44100, channels: 2 }, { encoding: 's16be', pt: 10 }],
      [{}, { encoding: 'f32le', rate: 44100, channels: 2 }, { encoding: 's16be', pt: 10 }],
      [{}, { encoding: 's32be', rate: 96000, channels: 6 }, { encoding: 's16be', pt: 96 }],
    ];
    for (const [opts, req, want] of cases) {
      const h = await makeBackend({ mode: 'request', ...opts }, req as never);
      cleanups.push(
        () => h.cleanup(),
        () => h.backend.close(),
      );
      const w = want as { encoding: string; pt: number; name?: string };
      expect(h.format.encoding).toBe(w.encoding);
      expect(h.backend.packetInfo!.payloadType).toBe(w.pt);
      if (w.name) expect(h.backend.packetInfo!.encodingName).toBe(w.name);
      expect(h.backend.sdp).toContain(`a=rtpmap:${w.pt} ${w.name ?? 'L16'}/`);
    }
  });

  it('works over IPv6 (::1)', async () => {
    const { rx, h } = await setup({}, '::1');
    await h.backend.activate(h.format);
    const input = pattern(8820 * 4, 5);
    feeder(h, input).fill();
    await run(h.clock, 400, 10);
    await rx.settle();
    expect(Buffer.concat(rx.rtp.map((x) => x.payload)).equals(Buffer.from(input))).toBe(true);
    expect(h.backend.sdp).toContain('c=IN IP6 ::1');
  });

  it('adds and removes recipients at run time; validates the command fields', async () => {
    const { rx, h } = await setup();
    const rx2 = await Receiver.open();
    cleanups.push(() => rx2.close());
    const add = h.backend.commands['add-recipient']!;
    const remove = h.backend.commands['remove-recipient']!;
    const reply = await add({ type: 'rtp.add-recipient', address: '127.0.0.1', port: rx2.port });
    expect(reply).toEqual({
      recipients: [
        { address: '127.0.0.1', port: rx.port },
        { address: '127.0.0.1', port: rx2.port },
      ],
    });
    await h.backend.activate(h.format);
    feeder(h, () => new Uint8Array(4096)).fill();
    await run(h.clock, 200, 10);
    await rx2.settle();
    expect(rx2.rtp.length).toBeGreaterThan(10);
    const r2 = await remove({ type: 'rtp.remove-recipient', address: '127.0.0.1', port: rx2.port });
    expect(r2).toEqual({ recipients: [{ address: '127.0.0.1', port: rx.port }] });
    const n = rx2.rtp.length;
    await run(h.clock, 200, 10);
    await rx2.settle();
    expect(rx2.rtp.length).toBe(n);
    for (const bad of [
      { address: '', port: 5004 },
      { address: '127.0.0.1', port: 0 },
      { address: '127.0.0.1', port: 65535 },
      { address: '127.0.0.1', port: '5004' },
      { port: 5004 },
    ]) {
      const err = await Promise.resolve(add({ type: 'rtp.add-recipient', ...bad })).catch((e: unknown) => e);
      expect(isSpeakerdError(err) && err.code === 'bad-command').toBe(true);
    }
    // values described, never printed whole: a 10,000-deep array, a long string
    let deep: unknown = [];
    for (let i = 0; i < 10_000; i++) deep = [deep];
    for (const [bad, says] of [
      [{ address: deep, port: 5004 }, 'address: expected a host name or IP address, got an array of 1'],
      [
        { address: '127.0.0.1', port: deep },
        'port: expected an integer 1..65534 (RTCP uses port + 1), got an array of 1',
      ],
      [
        { address: 'x'.repeat(300), port: 5004 },
        `address: expected a host name or IP address, got "${'x'.repeat(40)}…"`,
      ],
    ] as const) {
      const err = await Promise.resolve(add({ type: 'rtp.add-recipient', ...bad })).catch((e: unknown) => e);
      expect(isSpeakerdError(err) && err.code === 'bad-command', String(err)).toBe(true);
      expect((err as Error).message).toBe(says);
    }
    const err = await Promise.resolve(remove({ type: 'rtp.remove-recipient', address: '127.0.0.1', port: 9 })).catch(
      (e: unknown) => e,
    );
    expect(isSpeakerdError(err) && /not a recipient/.test((err as Error).message)).toBe(true);
  });

  it('survives send errors: drops, logs with a rate limit, reports lost, keeps its schedule', async () => {
    // a port where nothing listens: ECONNREFUSED arrives asynchronously on the connected socket
    const probe = await Receiver.open();
    const port = probe.port;
    probe.close();
    const h = await makeBackend({ destination: '127.0.0.1', port });
    cleanups.push(
      () => h.cleanup(),
      () => h.backend.close(),
    );
    await h.backend.activate(h.format);
    feeder(h, () => new Uint8Array(4096)).fill();
    for (let i = 0; i < 50; i++) {
      h.clock.advance(10);
      await sleep(2);
    }
    expect(h.events.states[0]?.state).toBe('lost');
    const warnings = h.log.entries.filter((e) => e.level === 'warn' && /dropped/.test(e.msg));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.length).toBeLessThanOrEqual(6);
    // pacing went on: about 500 ms of packets were sent on the virtual clock
    expect(h.backend.delay()).toBeLessThanOrEqual(882 + 4 * 360);
    expect(h.events.wakes).toBeGreaterThan(10); // one host top-up per 4 packets
  });

  it('sends silence while paused in pauseMode "silence", with no marker on resume', async () => {
    const { rx, h } = await setup({ pauseMode: 'silence' });
    await h.backend.activate(h.format);
    const feed = feeder(h, () => pattern(4096, 1));
    feed.fill();
    await run(h.clock, 100, 10);
    h.backend.flush();
    h.backend.pause!();
    await run(h.clock, 300, 10);
    h.backend.resume!();
    feed.fill();
    await run(h.clock, 100, 10);
    await rx.settle();
    const p = rx.rtp;
    checkStream(p, 4, 10);
    expect(p.filter((x) => x.marker).length).toBe(1);
    for (let i = 1; i < p.length; i++) expect((p[i]!.ts - p[i - 1]!.ts) >>> 0).toBe(p[i - 1]!.payload.length / 4);
    expect(p.some((x) => x.payload.every((b) => b === 0))).toBe(true);
  });

  it('counts timestamps in samples in DisOrder-compatible mode', async () => {
    const { rx, h } = await setup({ timestampsInSamples: true });
    await h.backend.activate(h.format);
    feeder(h, pattern(44100, 2)).fill();
    await run(h.clock, 300, 10);
    await rx.settle();
    const p = rx.rtp;
    for (let i = 1; i < p.length; i++) expect((p[i]!.ts - p[i - 1]!.ts) >>> 0).toBe(p[i - 1]!.payload.length / 2);
  });

  it('announces the SDP with SAP (RFC 2974) and deletes it at close', async () => {
    const sapRx = await Receiver.open();
    cleanups.push(() => sapRx.close());
    const got: Buffer[] = [];
    // the receiver's RTP socket doubles as the SAP listener
    (sapRx as unknown as { a: import('node:dgram').Socket }).a.on('message', (m) => got.push(Buffer.from(m)));
    const { h } = await setup({ sap: true, sapAddress: '127.0.0.1', sapPort: sapRx.port });
    await h.backend.activate(h.format);
    await sleep(100);
    await h.backend.close();
    await sleep(100);
    expect(got.length).toBeGreaterThanOrEqual(2);
    const a = got[0]!;
    expect(a[0]! >> 5).toBe(1); // SAP version 1
    expect(a[0]! & 0x04).toBe(0); // announcement
    const text = a.subarray(8).toString();
    expect(text.startsWith('application/sdp\0v=0')).toBe(true);
    expect(got[got.length - 1]![0]! & 0x04).toBe(0x04); // deletion
  });
});
