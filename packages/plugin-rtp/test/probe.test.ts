import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// no name server is asked in the tests: one name fails to resolve as a missing host does, the others resolve as usual
vi.mock('node:dns/promises', async (importActual) => {
  const actual = await importActual<typeof import('node:dns/promises')>();
  const lookup = (async (host: string, ...rest: unknown[]) => {
    if (host === 'speakerd-no-such-host.test')
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    if (host === 'speakerd-slow-host.test') return new Promise(() => {});
    return (actual.lookup as (...a: unknown[]) => Promise<unknown>)(host, ...rest);
  }) as typeof actual.lookup;
  return { ...actual, lookup, default: { ...actual, lookup } };
});

const { default: plugin, options, probeRtp } = await import('../src/index.js');

const dirs: string[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const s of sockets.splice(0)) s.close();
});

function context(): { configDir: string; pluginName: string; hostVersion: string } {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-rtp-probe-'));
  dirs.push(dir);
  return { configDir: dir, pluginName: 'rtp', hostVersion: '0.0.0' };
}

/** A receiver on 127.0.0.1 whose port and port + 1 are both free; counts what arrives on either. */
async function receiver(): Promise<{ port: number; received: () => number }> {
  let got = 0;
  for (;;) {
    const a = createSocket('udp4');
    await new Promise<void>((r) => a.bind(0, '127.0.0.1', r));
    const port = a.address().port;
    if (port % 2 === 1 || port >= 65534) {
      a.close();
      continue;
    }
    const b = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      b.once('error', () => r(false));
      b.bind(port + 1, '127.0.0.1', () => r(true));
    });
    if (!ok) {
      a.close();
      continue;
    }
    for (const s of [a, b]) {
      s.on('message', () => got++);
      sockets.push(s);
    }
    return { port, received: () => got };
  }
}

describe('rtp probe', () => {
  it('resolves undefined for a destination on loopback, and sends nothing to it (RTP or RTCP)', async () => {
    const r = await receiver();
    const ctx = context();
    const t0 = performance.now();
    expect(await plugin.probe!(options.parse({ destination: '127.0.0.1', port: r.port }), ctx)).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(500);
    expect(await plugin.probe!(options.parse({ destination: 'localhost', port: r.port }), ctx)).toBeUndefined();
    await new Promise((res) => setTimeout(res, 100));
    expect(r.received()).toBe(0);
  });

  it('a destination that does not resolve: says so and which key to set', async () => {
    expect(await plugin.probe!(options.parse({ destination: 'speakerd-no-such-host.test' }), context())).toBe(
      'rtp.destination: cannot resolve "speakerd-no-such-host.test" (ENOTFOUND); set "rtp.destination" to a host ' +
        'name that resolves or an IP address',
    );
  });

  it('is bounded: a resolver that never answers gives a timeout', async () => {
    const t0 = performance.now();
    const why = await probeRtp(options.parse({ destination: 'speakerd-slow-host.test' }), context(), 150);
    expect(why).toMatch(/^rtp\.destination: cannot resolve "speakerd-slow-host\.test" \(ETIMEDOUT\)/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('refuses what init() would refuse: mode "multicast" to a unicast address, broadcast over IPv6', async () => {
    expect(await plugin.probe!(options.parse({ destination: '127.0.0.1', mode: 'multicast' }), context())).toMatch(
      /^rtp\.destination: 127\.0\.0\.1 is not a multicast address; set "rtp\.mode"/,
    );
    expect(await plugin.probe!(options.parse({ destination: '::1', mode: 'broadcast' }), context())).toMatch(
      /IPv6 has no broadcast/,
    );
  });

  it('mode "request" needs no destination: only that a socket can be set up', async () => {
    expect(
      await plugin.probe!(options.parse({ destination: 'speakerd-no-such-host.test', mode: 'request' }), context()),
    ).toBeUndefined();
  });

  it('an SDP file that cannot be written is named, with the key to change', async () => {
    const ctx = context();
    expect(await plugin.probe!(options.parse({ sdp: 'stream.sdp' }), ctx)).toBeUndefined();
    const why = await plugin.probe!(options.parse({ sdp: 'no-such-dir/stream.sdp' }), ctx);
    expect(why).toBe(
      `rtp.sdp: cannot write ${join(ctx.configDir, 'no-such-dir/stream.sdp')} (${join(ctx.configDir, 'no-such-dir')}: ` +
        'ENOENT); set "rtp.sdp" to a file in a directory this user can write, or remove the key',
    );
  });
});
