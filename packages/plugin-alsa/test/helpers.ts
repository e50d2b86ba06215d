import plugin, { AlsaBackend, loadBinding, type AlsaOptions, type Binding } from '../src/index.js';
import {
  RealClock,
  TOKENS,
  bytesPerFrame,
  type BackendState,
  type HostEvents,
  type Logger,
  type PluginContext,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
// after the SDK, which loads reflect-metadata first
import { container } from 'tsyringe';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveCapability } from '../../../test/helpers/tools.js';

export const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

/** libasound, the addon and the test PCMs (ALSA_CONFIG_PATH from test/global-setup.ts) are all here. */
export function haveAlsa(): boolean {
  const { why } = loadBinding();
  if (why) return haveCapability('ALSA', false, why);
  const conf = process.env.ALSA_CONFIG_PATH ?? '';
  return haveCapability(
    'the ALSA test PCMs',
    conf.includes('fixtures/alsa/asound.conf'),
    'ALSA_CONFIG_PATH lacks them',
  );
}

export function binding(): Binding {
  return loadBinding().binding!;
}

export interface LogEntry {
  level: string;
  msg: string;
}

export function collectingLogger(entries: LogEntry[] = []): Logger & { entries: LogEntry[] } {
  const make =
    (level: string) =>
    (a: string | Record<string, unknown>, b?: string): void => {
      entries.push({ level, msg: typeof a === 'string' ? a : (b ?? '') });
    };
  return {
    entries,
    trace: make('trace'),
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    fatal: make('fatal'),
    child: () => collectingLogger(entries),
  };
}

export class CollectingEvents implements HostEvents {
  states: { state: BackendState; message: string }[] = [];
  wakes = 0;
  #waiters: (() => void)[] = [];
  backendState(state: BackendState, message: string): void {
    this.states.push({ state, message });
  }
  wake(): void {
    this.wakes++;
    for (const fn of this.#waiters.splice(0)) fn();
  }
  /** Resolves at the next wake() or after `ms` (a safety net, like the host's tick). */
  nextWake(ms = 100): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

export interface Harness {
  backend: AlsaBackend;
  events: CollectingEvents;
  log: Logger & { entries: LogEntry[] };
  dir: string;
  /** The capture file the `speakerd_capture` device writes. */
  file: string;
}

/** A backend made the way the host makes it: a child container with the tokens a plugin gets. */
export function makeBackend(
  options: Partial<AlsaOptions> & { device?: string } = {},
  device = 'speakerd_capture',
): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-alsa-'));
  const file = join(dir, 'out.raw');
  const opts = plugin.options.parse({ device: `${device}:${file}`, ...options });
  const c = container.createChildContainer();
  const log = collectingLogger();
  const events = new CollectingEvents();
  const context: PluginContext = { configDir: dir, pluginName: 'alsa', hostVersion: '0.0.0-test' };
  c.register(TOKENS.Options, { useValue: opts });
  c.register(TOKENS.Logger, { useValue: log });
  c.register(TOKENS.Clock, { useValue: new RealClock() });
  c.register(TOKENS.Events, { useValue: events });
  c.register(TOKENS.Context, { useValue: context });
  return { backend: c.resolve(AlsaBackend), events, log, dir, file };
}

/** Deterministic noise: any lost, repeated or reordered byte shows. */
export function noise(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Feed `data` as the host does: what writable() allows, then wait for wake() (or a tick). */
export async function feed(h: Harness, data: Uint8Array, format: SampleFormat, chunkFrames = 4096): Promise<void> {
  const fb = bytesPerFrame(format);
  let off = 0;
  while (off < data.length) {
    const room = h.backend.writable();
    if (room > 0) {
      const n = Math.min(room, chunkFrames, (data.length - off) / fb);
      const took = h.backend.write(data.subarray(off, off + n * fb));
      off += took * fb;
      if (took > 0) continue;
    }
    await h.events.nextWake();
  }
}

/** What the capture device received: FILE, then FILE.0001, FILE.0002, ... (one per reopen). */
export function readCapture(file: string): Buffer {
  const parts: Buffer[] = [];
  if (existsSync(file)) parts.push(readFileSync(file));
  for (let i = 1; existsSync(`${file}.${String(i).padStart(4, '0')}`); i++)
    parts.push(readFileSync(`${file}.${String(i).padStart(4, '0')}`));
  return Buffer.concat(parts);
}

export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
