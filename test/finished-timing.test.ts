// End-to-end: when `finished` comes, and in what order cancel's answer comes (issue 8).
// - `finished` for a track comes when its end is within earlyFinishMs of being audible, counting everything queued
//   ahead of it, so a chain of short tracks played one on the other's `finished` cannot run away ahead of the sound.
//   The command runs test/helpers/stamp.mjs, which logs when each byte reached it: the end of track X is audible at
//   about the arrival of its last byte plus the command's leadMs.
// - The answer to `cancel` of the current track comes before anything about the track promoted after it; a
//   current track that has not started (behind one reported finished, still playing out) is answered `stillborn`.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { noise } from './helpers/pcm.js';
import {
  arrivalOf,
  describeSilence,
  insertedSilence,
  lifecycleProblems,
  median,
  musicServer,
  outFrameOf,
  readStamps,
  realtimeDecoder,
  stampCommand,
  wallNow,
} from './helpers/peers.js';
import { Speakerd, type Event } from './helpers/speakerd.js';

const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
const FB = 4;
const EARLY_FINISH_MS = 1000;
const LEAD_MS = 20;
/** How much earlier than earlyFinishMs a `finished` may come (scheduling, the 10 ms fill tick, a loaded machine). */
const SLACK_MS = 150;

let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function start(run: string): Promise<Speakerd> {
  const s = await Speakerd.start({
    backend: 'command',
    command: { run, leadMs: LEAD_MS },
    format: CD,
    earlyFinishMs: EARLY_FINISH_MS,
  });
  cleanups.push(() => s.dispose());
  return s;
}

/** Connect decoders for `pcms` (ids `${prefix}${i}`), deliver everything, and wait until speakerd has it all. */
async function delivered(s: Speakerd, prefix: string, pcms: Uint8Array[]): Promise<string[]> {
  const ids = pcms.map((_, i) => `${prefix}${i}`);
  const results = await Promise.all(
    pcms.map((pcm, i) =>
      realtimeDecoder(s.socket, { id: ids[i], ...CD }, pcm, { speed: 1000, chunkFrames: 16384, bytesPerFrame: FB }),
    ),
  );
  for (const r of results) expect(r.reply).toEqual({ ok: true });
  for (let i = 0; i < 400; i++) {
    const st = await s.status();
    if (ids.every((id) => st.tracks.some((t: any) => t.id === id && t.eof))) return ids;
    await sleep(20);
  }
  throw new Error('the decoders never reached EOF');
}

async function untilSize(file: string, bytes: number, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(existsSync(file) && statSync(file).size >= bytes) && Date.now() < end) await sleep(25);
}

const out = (s: Speakerd) => {
  const f = join(s.dir, 'out.raw');
  return existsSync(f) ? readFileSync(f) : Buffer.alloc(0);
};

describe('finished never runs ahead of the sound', () => {
  it('30 tracks of 100 ms, each played on the previous finished: no finished more than earlyFinishMs ahead', async () => {
    const N = 30;
    const FRAMES = 4410;
    const s = await start(stampCommand('out.raw', 'stamps.log'));
    const pcms = Array.from({ length: N }, (_, i) => noise(FRAMES * FB, 1000 + i));
    const ids = await delivered(s, 'c', pcms);
    const run = await musicServer(
      s,
      ids.map((id) => ({ id })),
      { timeoutMs: 15000 },
    );
    const expected = Buffer.concat(pcms);
    await untilSize(join(s.dir, 'out.raw'), expected.length);
    await sleep(200);
    expect(await s.close()).toBe(0);

    // played in full, exactly: every decoder had delivered before the first play, so no silence at all
    const report = insertedSilence(out(s), expected, FB);
    expect.soft(report.exact, describeSilence(report, CD.rate)).toBe(true);
    expect.soft(report.leadingZeroFrames, describeSilence(report, CD.rate)).toBe(0);

    // lead of each finished over its track's audible end (arrival of its last byte at the command + leadMs)
    const stamps = readStamps(join(s.dir, 'stamps.log'));
    const leads = ids.map((id, i) => {
      const last = outFrameOf(report, (i + 1) * FRAMES - 1);
      const arrival = last === undefined ? undefined : arrivalOf(stamps, (last + 1) * FB - 1);
      expect.soft(arrival, `${id}: when its last byte reached the command`).toBeDefined();
      return (arrival ?? NaN) + LEAD_MS - run.finished[i]!.at;
    });
    const max = Math.max(...leads);
    console.log(
      `finished-timing: 30 x 100 ms chained on finished: lead of finished over the audible end: ` +
        `max ${max.toFixed(0)} ms, median ${median(leads).toFixed(0)} ms, last ${leads[N - 1]!.toFixed(0)} ms ` +
        `(bound earlyFinishMs ${EARLY_FINISH_MS} + ${SLACK_MS}); all: ${leads.map((x) => x.toFixed(0)).join(' ')}`,
    );
    const tooEarly = leads
      .map((lead, i) => ({ id: ids[i], lead: Math.round(lead) }))
      .filter((x) => x.lead > EARLY_FINISH_MS + SLACK_MS);
    expect.soft(tooEarly, 'finished more than earlyFinishMs + 150 ms before the audible end').toEqual([]);

    // each track: one playing (position 0), then finished, nothing after it
    expect(ids.flatMap((id) => lifecycleProblems(s.events, id))).toEqual([]);
  }, 30_000);
});

/** Index of the first event at or after `from` that is about `id` (-1: none). */
const firstAbout = (events: readonly Event[], id: string, from: number) =>
  events.findIndex((e, i) => i >= from && e.id === id);

describe('cancel: its answer first, stillborn for a track that has not started', () => {
  for (const nextFrames of [4410, 88_200]) {
    it(`cancel of the current track: its finished (with seq) before any event about the next (${nextFrames} frames)`, async () => {
      const s = await start('cat >> out.raw');
      const a = noise(44100 * 3 * FB, 61);
      const b = noise(nextFrames * FB, 62);
      await delivered(s, 'x', [a, b]);
      s.send({ type: 'play', id: 'x0' });
      s.send({ type: 'play', id: 'x1' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'x0', 10000);
      await sleep(300);
      const from = s.events.length;
      s.send({ type: 'cancel', id: 'x0', seq: 41 });
      const answer = await s.waitFor((e) => e.seq === 41, 10000, from);
      await s.waitFor((e) => e.type === 'finished' && e.id === 'x1', 15000);
      await sleep(100);
      const shown =
        'events after the cancel:\n' +
        s.events
          .slice(from)
          .map((e) => JSON.stringify(e))
          .join('\n');
      expect.soft(answer, shown).toMatchObject({ type: 'finished', id: 'x0', seq: 41 });
      const answerAt = s.events.indexOf(answer);
      const nextAt = firstAbout(s.events, 'x1', from);
      expect
        .soft(nextAt, `the first event about x1 comes after the answer (#${answerAt}); ${shown}`)
        .toBeGreaterThan(answerAt);
      expect.soft(s.events.filter((e) => e.type === 'finished' && e.id === 'x0')).toHaveLength(1);
      expect.soft(lifecycleProblems(s.events, 'x0')).toEqual([]);
      expect.soft(lifecycleProblems(s.events, 'x1')).toEqual([]);
      expect(await s.close()).toBe(0);
    }, 30_000);
  }

  it('cancel of a current track behind one reported finished and still playing out: stillborn; the next plays on', async () => {
    const s = await start('cat >> out.raw');
    const a = noise(44100 * 2 * FB, 71);
    const b = noise(44100 * 2 * FB, 72);
    const c = noise(22050 * FB, 73);
    await delivered(s, 'y', [a, b, c]);
    s.send({ type: 'play', id: 'y0' });
    const fin = await s.waitFor((e) => e.type === 'finished' && e.id === 'y0', 10000);
    s.send({ type: 'play', id: 'y1' }); // current now, but y0 still plays out for about earlyFinishMs
    const from = s.events.length;
    const cancelAt = wallNow();
    s.send({ type: 'cancel', id: 'y1', seq: 51 });
    const answer = await s.waitFor((e) => e.seq === 51, 5000, from);
    expect(cancelAt - s.timeOf(fin)).toBeLessThan(500); // sent well before y0's end is audible
    expect.soft(answer, 'the answer to cancel of y1').toMatchObject({ type: 'stillborn', id: 'y1', seq: 51 });
    s.send({ type: 'play', id: 'y2' }); // starts at the frame after y0's last
    await s.waitFor((e) => e.type === 'finished' && e.id === 'y2', 10000);
    const expected = Buffer.concat([a, c]);
    await untilSize(join(s.dir, 'out.raw'), expected.length);
    await sleep(200);
    expect(await s.close()).toBe(0);
    // y1 never played
    expect.soft(s.events.slice(from).filter((e) => e.id === 'y1' && e.seq !== 51)).toEqual([]);
    const report = insertedSilence(out(s), expected, FB);
    expect.soft(report.exact, `output y0 + y2: ${describeSilence(report, CD.rate)}`).toBe(true);
    expect.soft(report.leadingZeroFrames).toBe(0);
    expect.soft(lifecycleProblems(s.events, 'y0')).toEqual([]);
    expect.soft(lifecycleProblems(s.events, 'y2')).toEqual([]);
  }, 30_000);
});
