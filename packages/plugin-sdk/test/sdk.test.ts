import { describe, expect, it } from 'vitest';
import {
  ENCODINGS,
  RealtimePacer,
  SDK_VERSION,
  SpeakerdError,
  VirtualClock,
  bytesPerFrame,
  definePlugin,
  encodingInfo,
  formatKeyPath,
  framesIn,
  isSpeakerdError,
  manifestProblem,
  sampleFormatSchema,
  swapEndian,
  z,
} from '@speakerd/plugin-sdk';
import { readFileSync } from 'node:fs';

describe('formats', () => {
  it('knows the size of every encoding', () => {
    const sizes = ENCODINGS.map((e) => encodingInfo(e).bytes);
    expect(sizes).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 4, 4]);
    expect(bytesPerFrame({ encoding: 's24le', channels: 2 })).toBe(6);
    expect(framesIn(13, { encoding: 's16le', channels: 2 })).toBe(3);
    expect(swapEndian('s24le')).toBe('s24be');
    expect(swapEndian('f32be')).toBe('f32le');
    expect(swapEndian('u8')).toBe('u8');
  });
  it('validates formats with readable messages', () => {
    const r = sampleFormatSchema.safeParse({ encoding: 'pcm', rate: 100, channels: 2, x: 1 });
    expect(r.success).toBe(false);
    const msgs = r.error!.issues.map((i) => `${formatKeyPath(i.path)}: ${i.message}`);
    expect(msgs).toContain(
      'encoding: expected one of u8, s8, s16le, s16be, s24le, s24be, s32le, s32be, f32le, f32be, got "pcm"',
    );
    expect(msgs).toContain('rate: expected an integer 8000..768000, got 100');
  });
});

describe('plugin definitions', () => {
  it('reports what is missing from a manifest', () => {
    expect(manifestProblem({})).toBe('the plugin has no manifest');
    expect(manifestProblem({ manifest: { name: 'Bad Name', version: '1', sdk: '*' }, options: z.object({}) })).toMatch(
      /manifest.name/,
    );
    expect(manifestProblem({ manifest: { name: 'ok', version: '1.0.0', sdk: '^0.1.0' } })).toMatch(/options schema/);
    expect(() => definePlugin({ manifest: { name: 'x', version: '1.0.0', sdk: '' }, options: z.object({}) })).toThrow(
      SpeakerdError,
    );
  });
  it('SDK_VERSION is the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(SDK_VERSION).toBe(pkg.version);
  });
  it('coded errors carry the plugin name', () => {
    const e = new SpeakerdError('X_CODE', 'went wrong', { plugin: 'rtp' });
    expect(e.toString()).toBe('[rtp] X_CODE: went wrong');
    expect(isSpeakerdError(e)).toBe(true);
    expect(isSpeakerdError(new Error('x'))).toBe(false);
  });
});

describe('VirtualClock', () => {
  it('fires timers in deadline order with now() at each deadline', () => {
    const c = new VirtualClock(100);
    const seen: [string, number][] = [];
    c.setTimeout(() => seen.push(['b', c.now()]), 20);
    c.setTimeout(() => seen.push(['a', c.now()]), 10);
    const h = c.setTimeout(() => seen.push(['x', c.now()]), 15);
    c.setTimeout(() => {
      seen.push(['c', c.now()]);
      c.setTimeout(() => seen.push(['d', c.now()]), 0);
    }, 20);
    c.clearTimeout(h);
    c.advance(50);
    expect(seen).toEqual([
      ['a', 110],
      ['b', 120],
      ['c', 120],
      ['d', 120],
    ]);
    expect(c.now()).toBe(150);
  });
});

describe('RealtimePacer', () => {
  it('allows real time plus the lead, never a burst after falling behind', () => {
    const c = new VirtualClock();
    const p = new RealtimePacer(c, 48000, 960); // 20 ms lead
    p.start();
    expect(p.writable()).toBe(960);
    p.wrote(960);
    expect(p.writable()).toBe(0);
    c.advance(10);
    expect(p.writable()).toBe(480);
    p.wrote(480);
    expect(p.queued()).toBe(960);
    // the writer stalls for a second: it may not catch up with 48000 frames, only the lead
    c.advance(1000);
    expect(p.writable()).toBe(960);
    p.wrote(960);
    c.advance(5);
    expect(p.writable()).toBe(240);
    expect(p.msUntilWritable(480)).toBeCloseTo(5, 6);
  });

  it('writable() is a query: behind schedule it answers the lead and moves nothing; wrote() moves the schedule', () => {
    const c = new VirtualClock();
    const p = new RealtimePacer(c, 48000, 960);
    p.start();
    p.wrote(960);
    c.advance(1000); // far behind: 48000 frames of real time, 960 written
    const before = p.elapsedFrames();
    for (let i = 0; i < 100; i++) expect(p.writable()).toBe(960);
    expect(p.elapsedFrames()).toBe(before);
    expect(p.queued()).toBe(0);
    // the schedule moves when something is written: continuing at real time from now, with the lead
    p.wrote(960);
    expect(p.queued()).toBe(960);
    expect(p.writable()).toBe(0);
    c.advance(10);
    expect(p.queued()).toBe(480);
  });
});
