import { describe, expect, it } from 'vitest';
import type { NativeSender } from '../src/native.js';
import { Recipients } from '../src/recipients.js';
import { FakeTransport } from './helpers.js';

/** A native sender that records its recipients (only what Recipients calls). */
function fakeNative() {
  const calls: string[] = [];
  let next = 1;
  const native = {
    addRecipient: (address: string, port: number, delivery: number, ttl: number, loop: boolean, iface: string) => {
      calls.push(`add ${address}:${port} d${delivery} ttl${ttl} ${loop} '${iface}'`);
      return next++;
    },
    removeRecipient: (id: number) => {
      calls.push(`remove ${id}`);
      return true;
    },
  };
  return { native: native as unknown as NativeSender, calls };
}

const OPTS = { ttl: 3, loop: false, interface: undefined };

describe('Recipients: the transport and the native thread kept together', () => {
  it('adds to both once (idempotent), removes from both by the id the thread gave', async () => {
    const transport = new FakeTransport();
    transport.recipients = [];
    const { native, calls } = fakeNative();
    const r = new Recipients(transport, native, OPTS, () => false);
    await r.add({ address: '239.1.2.3', port: 5004 });
    await r.add({ address: '239.1.2.3', port: 5004 });
    await r.add({ address: '127.0.0.1', port: 6000 }, 'unicast');
    expect(r.list()).toEqual([
      { address: '239.1.2.3', port: 5004 },
      { address: '127.0.0.1', port: 6000 },
    ]);
    expect(calls).toEqual(["add 239.1.2.3:5004 d1 ttl3 false ''", "add 127.0.0.1:6000 d0 ttl3 false ''"]);
    expect(await r.remove({ address: '239.1.2.3', port: 5004 })).toBe(true);
    expect(await r.remove({ address: '239.1.2.3', port: 5004 })).toBe(false);
    expect(calls.slice(2)).toEqual(['remove 1']);
    expect(r.list()).toEqual([{ address: '127.0.0.1', port: 6000 }]);
  });

  it('a closed sender: the thread is not asked, the transport still is; no native sender: the transport alone', async () => {
    const transport = new FakeTransport();
    transport.recipients = [];
    const { native, calls } = fakeNative();
    let closed = false;
    const r = new Recipients(transport, native, OPTS, () => closed);
    await r.add({ address: '127.0.0.1', port: 6000 });
    closed = true;
    expect(await r.remove({ address: '127.0.0.1', port: 6000 })).toBe(true);
    expect(calls).toEqual(["add 127.0.0.1:6000 d0 ttl3 false ''"]);
    const plain = new Recipients(new FakeTransport(), undefined, OPTS, () => false);
    await plain.add({ address: '127.0.0.1', port: 7000 });
    expect(plain.list()).toContainEqual({ address: '127.0.0.1', port: 7000 });
    expect(await plain.remove({ address: 'no-such-host.invalid', port: 7000 })).toBe(false);
  });
});
