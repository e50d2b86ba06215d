import { loadBinding, type Binding, type ProbeOptions, type ProbeResult } from './binding.js';
import { ALSA_FORMATS } from './formats.js';
import type { AlsaOptions } from './options.js';

/** How long a probe may take before it is given up (the SDK asks a probe to settle within about two seconds). */
export const PROBE_TIMEOUT_MS = 2000;

const ETIMEDOUT = 110;

/**
 * Open the device and close it again, on a thread of the addon's own (an open can wait on a sound server or a
 * Bluetooth link), so the event loop never waits. Bounded: after `timeoutMs` it resolves with a timeout (the
 * thread's late answer is dropped).
 */
export function probeDevice(
  binding: Binding,
  opts: ProbeOptions,
  timeoutMs: number = PROBE_TIMEOUT_MS,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      resolve({
        ok: false,
        errno: ETIMEDOUT,
        fatal: false,
        message: `"${opts.device}" did not answer within ${timeoutMs / 1000} s`,
      });
    }, timeoutMs);
    try {
      binding.probeAsync(opts, (r) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      });
    } catch (err) {
      settled = true;
      clearTimeout(timer);
      resolve({ ok: false, errno: 0, fatal: false, message: err instanceof Error ? err.message : String(err) });
    }
  });
}

/**
 * A failed open (busy or absent, not a refused format), in one line a person can act on: what libasound said and
 * what to do about it.
 */
export function withAdvice(device: string, r: Pick<ProbeResult, 'errno' | 'message'>): string {
  const m = r.message;
  switch (r.errno) {
    case 2: // ENOENT
    case 6: // ENXIO
    case 19: // ENODEV
      if (/cannot find card|no soundcards found/i.test(m))
        return (
          `${m}: ALSA sees no sound card here ("aplay -l" lists none); connect one, or play through ` +
          `"backend": "command" or "rtp" instead`
        );
      return `${m}: set "alsa.device" to a PCM that exists ("aplay -L" lists them)`;
    case 16: // EBUSY
      return (
        `${m}: another program holds "${device}" ("fuser -v /dev/snd/*" shows which); stop it, or set ` +
        `"alsa.device" to a shared PCM such as "default" or "dmix"`
      );
    case 1: // EPERM
    case 13: // EACCES
      return `${m}: the user may not use the sound device; add it to the "audio" group (usermod -aG audio "$USER", then log in again)`;
    case ETIMEDOUT:
      return `${m}: check the sound server or device behind "${device}", or set "alsa.device" to another PCM`;
    default:
      return `${m}: check "alsa.device" ("aplay -L" lists the PCMs)`;
  }
}

/**
 * The plugin's `probe`: whether `options.device` opens now. Only the open counts: the device is asked for CD
 * audio with alsa-lib's conversions allowed, and a device that opens but refuses that is still "able" (the
 * configured output format is checked by the backend's configure(), which knows it).
 */
export async function probe(options: AlsaOptions): Promise<string | undefined> {
  const { binding, why } = loadBinding();
  if (!binding) return why ?? 'the ALSA addon is unavailable';
  const r = await probeDevice(binding, {
    device: options.device,
    format: ALSA_FORMATS.s16le.code,
    rate: 44100,
    channels: 2,
    allowResample: true,
  });
  if (r.ok || r.fatal) return undefined;
  return withAdvice(options.device, r);
}
