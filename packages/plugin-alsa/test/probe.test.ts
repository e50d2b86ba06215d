import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PluginContext } from '@speakerd/plugin-sdk';
import plugin, { errnoNumber, options, probeDevice, withAdvice, type Binding } from '../src/index.js';
import { binding, haveAlsa } from './helpers.js';

const ok = haveAlsa();
const context: PluginContext = { configDir: tmpdir(), pluginName: 'alsa', hostVersion: '0.0.0' };
const dirs: string[] = [];

function captureDevice(): string {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-alsa-probe-'));
  dirs.push(dir);
  return `speakerd_capture:${join(dir, 'out.raw')}`;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

afterEach(() => {
  binding()?.clearFaults();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!ok)('alsa probe', () => {
  it('resolves undefined for a device that opens (the test PCM), and quickly', async () => {
    const { value, ms } = await timed(() => plugin.probe!(options.parse({ device: captureDevice() }), context));
    expect(value).toBeUndefined();
    expect(ms).toBeLessThan(500);
  });

  it('says which device does not open, what libasound said and what to do, for a missing PCM', async () => {
    const { value, ms } = await timed(() => plugin.probe!(options.parse({ device: 'speakerd_no_such_pcm' }), context));
    expect(value).toMatch(/^cannot open "speakerd_no_such_pcm": No such file or directory/);
    expect(value).toContain('(libasound: Unknown PCM speakerd_no_such_pcm)');
    expect(value).toContain('set "alsa.device" to a PCM that exists ("aplay -L" lists them)');
    expect(value).not.toContain('\n');
    expect(ms).toBeLessThan(500);
  });

  it('runs the open off the event loop: timers keep firing, and the answer comes back through a callback', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => plugin.probe!(options.parse({ device: 'speakerd_no_such_pcm' }), context)),
    );
    await new Promise((r) => setTimeout(r, 10));
    clearInterval(timer);
    expect(answers.every((a) => typeof a === 'string' && a.includes('speakerd_no_such_pcm'))).toBe(true);
    expect(ticks).toBeGreaterThan(0);
  });

  it('a busy device is named busy, with the command that shows who holds it', async () => {
    binding().injectFault({ open: errnoNumber('EBUSY')!, openCount: 1 });
    const why = await plugin.probe!(options.parse({ device: captureDevice() }), context);
    expect(why).toMatch(/Device or resource busy \(injected\): another program holds ".*"/);
    expect(why).toContain('fuser -v /dev/snd/*');
  });

  it('"default" on a machine without a sound card: says there is no card and names the other backends', async () => {
    const r = binding().probe({ device: 'default', format: 2, rate: 44100, channels: 2 });
    if (r.ok) return; // this machine has a sound card: nothing to check
    const why = await plugin.probe!(options.parse({}), context);
    expect(why).toMatch(/^cannot open "default"/);
    if (/cannot find card/.test(why!)) expect(why).toContain('"backend": "command" or "rtp"');
  });

  it('is bounded: an open that never answers resolves with a timeout instead of hanging', async () => {
    const stuck = { probeAsync: () => {} } as unknown as Binding;
    const { value, ms } = await timed(() =>
      probeDevice(stuck, { device: 'hw:9', format: 2, rate: 44100, channels: 2 }, 150),
    );
    expect(value).toMatchObject({ ok: false, fatal: false, message: '"hw:9" did not answer within 0.15 s' });
    expect(ms).toBeGreaterThanOrEqual(140);
    expect(ms).toBeLessThan(1000);
    expect(withAdvice('hw:9', value)).toContain('check the sound server or device behind "hw:9"');
  });

  it('a device that opens but refuses CD audio still counts as able (configure checks the real format)', async () => {
    // speakerd_capture48 only runs at 48000 Hz; the probe allows alsa-lib's conversions, so it opens
    const why = await plugin.probe!(
      options.parse({ device: captureDevice().replace('capture', 'capture48') }),
      context,
    );
    expect(why).toBeUndefined();
  });

  it('without libasound, says what is missing and how to get it', () => {
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const p = (await import(${JSON.stringify(dist)})).default;` +
          `process.stdout.write(String(await p.probe(p.options.parse({}), {})));`,
      ],
      { env: { ...process.env, SPEAKERD_ALSA_LIBRARY: 'libasound-missing.so.2' }, encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/libasound\.so\.2 cannot be loaded .*apt-get install libasound2/);
  });
});
