import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createSocket, type Socket } from 'node:dgram';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SPEAKERD, tempDir } from './cli.js';
import { Speakerd, type Event } from './speakerd.js';

/** The faulty plugin's sources (test/fixtures/faulty-plugin); tests run a temporary copy of it. */
export const FAULTY_FIXTURE = fileURLToPath(new URL('../fixtures/faulty-plugin', import.meta.url));

/**
 * The SDK of the speakerd binary under test (`<repo>/packages/plugin-sdk` next to `packages/host/bin/speakerd.js`).
 * The plugin must import this very copy: tsyringe's injection metadata lives in the module instance the host uses.
 */
export const SDK_OF_BINARY = join(dirname(SPEAKERD), '..', '..', 'plugin-sdk');

/**
 * Copy the faulty plugin to a temporary directory and link the binary's SDK into its node_modules. Returns the
 * plugin's directory (to name as `backend`) and a function that removes the copy. Nothing is written to the
 * fixture itself.
 */
export function installFaultyPlugin(): { dir: string; cleanup: () => void } {
  const tmp = tempDir('speakerd-fp-');
  const dir = join(tmp.dir, 'plugin');
  cpSync(FAULTY_FIXTURE, dir, { recursive: true, filter: (src) => !src.includes('node_modules') });
  mkdirSync(join(dir, 'node_modules', '@speakerd'), { recursive: true });
  symlinkSync(SDK_OF_BINARY, join(dir, 'node_modules', '@speakerd', 'plugin-sdk'));
  return { dir, cleanup: tmp.cleanup };
}

/** Start speakerd and make sure it is killed and its temporary directory removed when the test ends. */
export async function startSpeakerd(
  onTestFinished: (fn: () => void | Promise<void>) => void,
  config: Record<string, unknown>,
  opts: { waitReady?: boolean } = {},
): Promise<Speakerd> {
  const s = await Speakerd.start(config, opts);
  onTestFinished(async () => {
    s.kill();
    await Promise.race([s.exited, sleep(5000)]);
    rmSync(s.dir, { recursive: true, force: true });
  });
  return s;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Lines on stderr at warn level or above: pino JSON lines with `level` ≥ 40, and any line that is not JSON (a
 * plain message is something the user is meant to read).
 */
export function warnLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        const rec = JSON.parse(line) as { level?: unknown };
        return typeof rec.level !== 'number' || rec.level >= 40;
      } catch {
        return true;
      }
    });
}

/** The `backend` events seen so far. */
export function backendEvents(s: Speakerd): Event[] {
  return s.events.filter((e) => e.type === 'backend');
}

/** Wait until status says the decoder for `id` has delivered everything. */
export async function untilEof(s: Speakerd, id: string, timeoutMs = 15000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const st = await s.status();
    if (st.tracks.some((t: any) => t.id === id && t.eof)) return;
    await sleep(20);
  }
  throw new Error(`the decoder for ${id} never reached EOF`);
}

/** Size of `file` in bytes (0 when it does not exist). */
export function fileSize(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/** Wait until `file` holds at least `bytes` bytes; returns false on timeout. */
export async function untilFileSize(file: string, bytes: number, timeoutMs: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (fileSize(file) >= bytes) return true;
    await sleep(10);
  }
  return fileSize(file) >= bytes;
}

/** The file's bytes, or an empty buffer when it does not exist. */
export function readOutput(file: string): Buffer {
  return existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
}

/** Wait until `pred` holds for the events seen (polling), or time out with what was seen. */
export async function until(s: Speakerd, what: string, pred: () => boolean, timeoutMs = 15000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs)
      throw new Error(
        `timed out waiting for ${what}; saw:\n${s.events.map((e) => JSON.stringify(e)).join('\n')}\n` +
          `stderr:\n${s.stderr.slice(-3000)}`,
      );
    await sleep(20);
  }
}

/**
 * A UDP port pair (RTP and RTCP, `port` and `port + 1`) on 127.0.0.1 that swallows whatever arrives, so a sender
 * gets no ICMP port-unreachable errors. Nothing is read from it.
 */
export async function udpSink(): Promise<{ port: number; close: () => void }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const a = await bind(0);
    const port = (a.address() as { port: number }).port;
    if (port >= 65534) {
      a.close();
      continue;
    }
    try {
      const b = await bind(port + 1);
      return {
        port,
        close: () => {
          a.close();
          b.close();
        },
      };
    } catch {
      a.close();
    }
  }
  throw new Error('no free UDP port pair on 127.0.0.1');
}

function bind(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
    s.bind(port, '127.0.0.1', () => {
      s.removeAllListeners('error');
      s.on('error', () => {});
      s.on('message', () => {});
      resolve(s);
    });
  });
}
