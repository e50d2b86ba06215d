// End-to-end: an output that cannot be opened is `lost` from the start — in `status` and in a `backend` event,
// with the reason — and a retrying ALSA backend logs one line per attempt, not libasound's eight.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadBinding } from '../packages/plugin-alsa/src/binding.js';
import { decoder, Speakerd, type Event } from './helpers/speakerd.js';
import { haveCapability } from './helpers/tools.js';

const CD = { encoding: 's16le', rate: 44100, channels: 2 } as const;
const { binding, why } = loadBinding();
const alsa = haveCapability('ALSA', binding !== undefined, why ?? '');
/** Without a sound card (this is what CI has), "default" does not open: the newcomer's situation. */
const defaultMissing =
  alsa &&
  !(
    await new Promise<{ ok: boolean }>((resolve) =>
      binding!.probeAsync({ device: 'default', format: 2, rate: 44100, channels: 2, allowResample: true }, resolve),
    )
  ).ok;

const running: Speakerd[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.dispose();
});

async function start(config: Record<string, unknown>): Promise<Speakerd> {
  // at the default log level, as a person runs it (the helper's own default is debug)
  const s = await Speakerd.start(config, { args: ['--log-level', 'info'] });
  running.push(s);
  return s;
}

type LogLine = { level: number; msg: string };
function logLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LogLine);
}

/** Play a track whose decoder has plenty to send, so the backend is activated and retries its device. */
function playSomething(s: Speakerd, id: string): void {
  void decoder(s.socket, { id, ...CD }, new Uint8Array(44100 * 4 * 5), { chunk: 65536 }).catch(() => {});
  s.send({ type: 'play', id });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The checks both devices share: lost right after ready, with the reason in the event and in status. */
async function expectLostFromTheStart(s: Speakerd, device: string): Promise<Event> {
  const ready = s.events.findIndex((e) => e.type === 'ready');
  expect(ready).toBe(0);
  const lost = await s.waitFor((e) => e.type === 'backend', 5000);
  expect(s.events.indexOf(lost)).toBe(1); // right after ready, before anything has been played
  expect(lost).toMatchObject({ type: 'backend', state: 'lost', plugin: 'alsa' });
  expect(lost.message).toContain(`alsa: cannot open "${device}"`);
  const status = await s.status();
  expect(status.backendState).toBe('lost');
  expect(status.backendMessage).toBe(lost.message);
  return lost;
}

/** Over `ms` of retrying: one line per attempt (and a few others), none of them libasound's. */
async function expectOneLinePerAttempt(s: Speakerd, ms: number): Promise<{ lines: number; attempts: number }> {
  const from = s.stderr.length;
  playSomething(s, 't1');
  await sleep(ms);
  const lines = logLines(s.stderr.slice(from));
  const attempts = lines.filter((l) => /cannot open .*retrying/.test(l.msg)).length;
  // back-off 250 ms, 500 ms, 1 s, 2 s…: at least 4 attempts in 3.5 s
  expect(attempts).toBeGreaterThanOrEqual(4);
  expect(lines.filter((l) => /^libasound: /.test(l.msg))).toEqual([]);
  expect(lines.length).toBeLessThanOrEqual(attempts + 3);
  // still honest: nothing came back
  expect((await s.status()).backendState).toBe('lost');
  expect(s.events.filter((e) => e.type === 'backend').map((e) => e.state)).toEqual(['lost']);
  return { lines: lines.length, attempts };
}

describe.skipIf(!alsa)('honest state from the start (alsa)', () => {
  it('a PCM that does not exist: lost from the start, with the reason; one log line per attempt', async () => {
    const s = await start({ backend: 'alsa', alsa: { device: 'speakerd_no_such_pcm' } });
    const lost = await expectLostFromTheStart(s, 'speakerd_no_such_pcm');
    expect(lost.message).toContain('(libasound: Unknown PCM speakerd_no_such_pcm)');
    expect(lost.message).toContain('set "alsa.device" to a PCM that exists ("aplay -L" lists them)');
    await expectOneLinePerAttempt(s, 3500);
    expect(await s.close()).toBe(0);
  });

  it.skipIf(!defaultMissing)(
    '"default" on a machine without a sound card: says so and names the other backends; libasound\'s eight ' +
      'lines per attempt are gone',
    async () => {
      const s = await start({ backend: 'alsa', alsa: { device: 'default' } });
      const lost = await expectLostFromTheStart(s, 'default');
      if (/cannot find card/.test(lost.message)) expect(lost.message).toContain('"backend": "command" or "rtp"');
      await expectOneLinePerAttempt(s, 3500);
      expect(await s.close()).toBe(0);
    },
  );

  it('a device that opens: ok from the start, no backend event', async () => {
    const s = await start({ backend: 'alsa', alsa: { device: 'speakerd_capture:./out.raw' } });
    const status = await s.status();
    expect(status.backendState).toBe('ok');
    expect(status.backendMessage).toBeUndefined();
    expect(s.events.filter((e) => e.type === 'backend')).toEqual([]);
    expect(await s.close()).toBe(0);
  });

  it('a reload onto a device that does not open: the new backend says lost when it takes over', async () => {
    const s = await start({ backend: 'alsa', alsa: { device: 'speakerd_capture:./out.raw' } });
    const file = join(s.dir, 'speakerrc.json');
    writeFileSync(
      file,
      JSON.stringify({ socket: s.socket, backend: 'alsa', alsa: { device: 'speakerd_no_such_pcm' } }, null, 2),
    );
    expect(await s.request({ type: 'reload' })).toMatchObject({ type: 'reloaded' });
    const lost = await s.waitFor((e) => e.type === 'backend', 5000);
    expect(lost).toMatchObject({ state: 'lost', plugin: 'alsa' });
    expect(lost.message).toContain('cannot open "speakerd_no_such_pcm"');
    expect((await s.status()).backendState).toBe('lost');
    expect(await s.close()).toBe(0);
  });
});
