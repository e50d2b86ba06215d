// Receivers for the rtp end-to-end tests: plain UDP sockets on 127.0.0.1, closed by the test's cleanups.
import { createSocket, type Socket } from 'node:dgram';

export type Cleanups = (() => void | Promise<void>)[];

/** A UDP receiver bound to 127.0.0.1:`port` only (nothing on port + 1, so RTCP there gets ICMP port unreachable). */
export async function rtpOnly(cleanups: Cleanups, port: number): Promise<{ packets: Buffer[]; socket: Socket }> {
  const socket = createSocket('udp4');
  const packets: Buffer[] = [];
  socket.on('message', (m) => packets.push(m));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { packets, socket };
}

/** A receiver on both ports: RTP packets and RTCP compounds. */
export async function both(cleanups: Cleanups, port: number): Promise<{ rtp: Buffer[]; rtcp: Buffer[] }> {
  const a = await rtpOnly(cleanups, port);
  const b = await rtpOnly(cleanups, port + 1);
  return { rtp: a.packets, rtcp: b.packets };
}

export function swap16(b: Uint8Array): Buffer {
  const out = Buffer.from(b);
  out.swap16();
  return out;
}

/** The CNAME item of the SDES packet in an RTCP compound. */
export function cnameOf(compound: Buffer): string | undefined {
  for (let off = 0; off + 4 <= compound.length; off += (compound.readUInt16BE(off + 2) + 1) * 4) {
    if (compound[off + 1] === 202 && compound[off + 8] === 1) {
      const len = compound[off + 9]!;
      return compound.subarray(off + 10, off + 10 + len).toString('utf8');
    }
  }
  return undefined;
}
