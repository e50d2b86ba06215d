// SAP discovery by VLC's default listener: the built speakerd and VLC (the `sap` services-discovery module, as a
// non-root user: VLC refuses root) run in a network namespace the test creates, with multicast routed to lo, so no
// announcement leaves it. With rtp.sapAddress 239.255.255.255 VLC lists speakerd's session; with the default
// 224.0.0.56 (PipeWire's and PulseAudio's group) it does not, which is why the address is an option.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SPEAKERD, tempDir } from './helpers/cli.js';
import { decoder, Speakerd } from './helpers/speakerd.js';
import { noise } from './helpers/pcm.js';
import { canUseNetns, netns } from './helpers/netns.js';
import { haveCapability, haveTool } from './helpers/tools.js';
import { exitOf, freePortPair } from './helpers/udp.js';

const CD = { encoding: 's16le', rate: 44100, channels: 2 };
let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Who runs VLC: `nobody` through runuser when we are root, else ourselves. */
const asUser = (cmd: string[]) => (process.getuid?.() === 0 ? ['runuser', '-u', 'nobody', '--', ...cmd] : cmd);

let ns: ReturnType<typeof netns>;
afterAll(() => {
  if (!ns) return;
  ns.remove();
  // nothing of the namespace is left for `ip netns list`
  expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain(ns.name);
});

function usable(): boolean {
  if (!haveCapability('network namespaces', canUseNetns(), 'needs root and "ip netns"')) return false;
  if (!haveTool('vlc', asUser(['vlc', '--version']))) return false;
  ns ??= netns();
  return haveCapability('a network namespace', ns !== undefined, 'ip netns add failed (printed above)');
}

/**
 * VLC's rc interface with SAP discovery, inside the namespace. Its output to a pipe is buffered until it exits, so
 * `playlist()` asks for the playlist, quits, and returns what VLC printed.
 */
function vlc(home: string) {
  const child = spawn(
    'ip',
    // XDG_RUNTIME_DIR: libpulse's runtime directory in the temporary home, not a /tmp/pulse-* left behind
    ns!.exec(
      asUser([
        'env',
        `HOME=${home}`,
        `XDG_RUNTIME_DIR=${home}`,
        'vlc',
        '-I',
        'rc',
        '--services-discovery',
        'sap',
        '--no-video',
      ]),
    ),
    { stdio: ['pipe', 'pipe', 'pipe'] },
  ) as ChildProcessWithoutNullStreams;
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.resume();
  cleanups.push(() => void child.kill('SIGKILL'));
  return {
    async playlist(): Promise<string> {
      child.stdin.write('playlist\n');
      await sleep(300);
      child.stdin.end('quit\n');
      await exitOf(child, 5000);
      return out;
    },
  };
}

/** speakerd inside the namespace, announcing every second to `sapAddress` (or the default); one track played. */
async function announcing(sapAddress: string | undefined) {
  const { dir } = tempDir('speakerd-e2e-sap-');
  const socket = join(dir, 'run', 'decoders.sock');
  const rtp = {
    destination: '127.0.0.1',
    port: freePortPair(),
    sap: true,
    sapIntervalS: 1,
    ...(sapAddress ? { sapAddress } : {}),
  };
  writeFileSync(join(dir, 'speakerrc.json'), JSON.stringify({ socket, backend: 'rtp', format: CD, rtp }));
  const child = spawn(
    'ip',
    ns!.exec([process.execPath, SPEAKERD, '--allow-root', '--config', join(dir, 'speakerrc.json')]),
    {
      cwd: dir,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const s = new Speakerd(child as never, dir, socket);
  cleanups.push(() => s.dispose());
  await s.waitFor((e) => e.type === 'ready', 15000);
  // announcements start with the first activate and go on until exit
  const r = await decoder(socket, { id: 'a', ...CD }, noise(44100 * 4, 9));
  expect(r.reply).toEqual({ ok: true });
  s.send({ type: 'play', id: 'a' });
  return s;
}

/** The entries under VLC's "Network streams (SAP)" node. */
function sapEntries(playlist: string): string[] {
  const lines = playlist.split(/\r?\n/);
  const at = lines.findIndex((l) => l.includes('Network streams (SAP)'));
  if (at < 0) return [];
  const entries: string[] = [];
  for (const l of lines.slice(at + 1)) {
    const m = /^\|\s{3,}\d+ - ([^\r\n]*)/.exec(l);
    if (!m) break;
    entries.push(m[1]!.trim());
  }
  return entries;
}

describe("SAP: found by VLC's default SAP listener, in a network namespace", () => {
  it('rtp.sapAddress 239.255.255.255: VLC lists the session "speakerd"', async () => {
    if (!usable()) return;
    const home = tempDir('speakerd-vlc-home-').dir;
    chmodSync(home, 0o777); // VLC runs as nobody and keeps its configuration there
    const v = vlc(home);
    await announcing('239.255.255.255');
    await sleep(5000); // 5 announcements
    const playlist = await v.playlist();
    expect(playlist).toContain('Network streams (SAP)'); // VLC's SAP discovery is running
    expect(sapEntries(playlist), playlist).toEqual(['speakerd']);
  });

  it('the default 224.0.0.56 (PipeWire, PulseAudio): VLC does not list it within 5 announcements', async () => {
    if (!usable()) return;
    const home = tempDir('speakerd-vlc-home-').dir;
    chmodSync(home, 0o777);
    const v = vlc(home);
    await announcing(undefined);
    await sleep(5000);
    const playlist = await v.playlist();
    expect(playlist).toContain('Network streams (SAP)'); // VLC's SAP discovery is running
    expect(sapEntries(playlist)).toEqual([]);
  });
});
