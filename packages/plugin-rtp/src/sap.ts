import { isIPv6 } from 'node:net';

const MIME = Buffer.from('application/sdp\0');

/**
 * A SAP packet (RFC 2974): an announcement of `sdp`, or its deletion. No authentication, no encryption, no
 * compression; `origin` is the announcing host's address (IPv4 or IPv6).
 */
export function buildSap(p: { sdp: string; origin: string; msgIdHash: number; deletion: boolean }): Buffer {
  const v6 = isIPv6(p.origin);
  const originBytes = v6 ? ipv6Bytes(p.origin) : Buffer.from(p.origin.split('.').map((x) => Number(x) & 0xff));
  const head = Buffer.alloc(4);
  // V=1 (001), A (address type), R=0, T (0 announce, 1 deletion), E=0, C=0
  head[0] = 0x20 | (v6 ? 0x10 : 0) | (p.deletion ? 0x04 : 0);
  head[1] = 0; // no authentication data
  head.writeUInt16BE(p.msgIdHash & 0xffff, 2);
  return Buffer.concat([head, originBytes, MIME, Buffer.from(p.sdp)]);
}

function ipv6Bytes(a: string): Buffer {
  const [h, t] = a.split('::') as [string, string | undefined];
  const head = h ? h.split(':') : [];
  const tail = t ? t.split(':') : [];
  const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
  const out = Buffer.alloc(16);
  groups.slice(0, 8).forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16) & 0xffff, i * 2));
  return out;
}
