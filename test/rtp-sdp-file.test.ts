// Issue 11 (4), through the built binary: the SDP file is created exclusively and never written through a symlink.
import { lstatSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/cli.js';
import { Speakerd } from './helpers/speakerd.js';
import { both } from './helpers/rtp-rx.js';
import { freePortPair } from './helpers/udp.js';

const CD = { encoding: 's16le', rate: 44100, channels: 2 };
let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('rtp: the SDP file is written exclusively, never through a symlink (issue 11, 4)', () => {
  it('symlinks at the old temp names and at the temp pattern are not followed; the SDP is right', async () => {
    const { dir, cleanup } = tempDir('speakerd-sdp-');
    cleanups.push(cleanup);
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    const sdp = join(dir, 'stream.sdp');
    // the old predictable name for the pids speakerd may get, and names in the shape of the new temp pattern
    const planted: string[] = [];
    // the next pids to be handed out (speakerd's among them)
    const last = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    for (let p = last + 1; p < last + 3000; p++) planted.push(`${sdp}.${p}.tmp`);
    // and at names of the shape of the new temporary file (.stream.sdp.<random hex>.tmp) and the old one
    for (const hex of ['0000000000000000', 'ffffffffffffffff', '0123456789abcdef']) {
      planted.push(join(dir, `.stream.sdp.${hex}.tmp`));
      planted.push(`${sdp}.${hex}.tmp`);
    }
    planted.push(`${sdp}.tmp`);
    for (const p of planted) symlinkSync(victim, p);
    const port = freePortPair();
    const rx = await both(cleanups, port);
    const s = await Speakerd.start({ backend: 'rtp', format: CD, rtp: { port, sdp: 'stream.sdp' } }, { dir });
    cleanups.push(() => s.kill());
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(lstatSync(sdp).isSymbolicLink()).toBe(false);
    expect(lstatSync(sdp).mode & 0o777).toBe(0o644);
    const text = readFileSync(sdp, 'utf8');
    expect(text).toMatch(/^v=0\r\n/);
    expect(text).toContain(`m=audio ${port} RTP/AVP 10\r\n`);
    expect(text).toContain('c=IN IP4 127.0.0.1\r\n');
    // every planted link is still a link to the victim, and no temp file was left behind
    for (const p of planted) expect(lstatSync(p).isSymbolicLink()).toBe(true);
    const names = readdirSync(dir).filter((n) => /^\.?stream\.sdp\./.test(n));
    expect(names.length).toBe(planted.length);
    expect(await s.close()).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(rx.rtp.length).toBe(0);
  }, 30000);

  it('a symlink at the SDP path itself is replaced, not followed', async () => {
    const { dir, cleanup } = tempDir('speakerd-sdp-');
    cleanups.push(cleanup);
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, join(dir, 'stream.sdp'));
    const port = freePortPair();
    await both(cleanups, port);
    const s = await Speakerd.start({ backend: 'rtp', format: CD, rtp: { port, sdp: 'stream.sdp' } }, { dir });
    cleanups.push(() => s.kill());
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(lstatSync(join(dir, 'stream.sdp')).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(dir, 'stream.sdp'), 'utf8')).toContain(`m=audio ${port} RTP/AVP 10`);
    expect(await s.close()).toBe(0);
  }, 30000);
});
