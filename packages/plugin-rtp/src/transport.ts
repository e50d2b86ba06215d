import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';

/** How datagrams reach a recipient. */
export type Delivery = 'unicast' | 'multicast' | 'broadcast';

/** A place RTP goes to (RTCP goes to `port + 1`). */
export interface Destination {
  readonly address: string;
  readonly port: number;
}

/** Called once per datagram handed to the kernel, with the error if it failed. */
export type SendDone = (err: Error | null) => void;

/** Where packets go. The UDP implementation is {@link UdpTransport}; tests may pass their own. */
export interface Transport {
  /** Send an RTP packet to every recipient; `done` is called once per recipient. Returns how many sends began. */
  sendRtp(packet: Buffer, done: SendDone): number;
  /** Send an RTCP packet to every recipient's port + 1; resolves when every send has completed or failed. */
  sendRtcp(packet: Buffer): Promise<void>;
  /** Send one datagram to an arbitrary address (SAP); resolves when it has been sent or failed. */
  sendTo(packet: Buffer, dest: Destination): Promise<void>;
  /** Add a recipient (idempotent). */
  add(dest: Destination, delivery?: Delivery): Promise<Destination>;
  /** Remove a recipient; false when it was not one. */
  remove(dest: Destination): Promise<boolean>;
  /** The recipients, in the order they were added. */
  list(): Destination[];
  /** The local address datagrams leave from (for SDP `o=` and SAP), when known. */
  localAddress(): string | undefined;
  close(): Promise<void>;
}

export interface UdpTransportOptions {
  ttl: number;
  loop: boolean;
  interface: string | undefined;
  /**
   * An RTP send or socket error (ECONNREFUSED, ENETUNREACH, ENOBUFS, EHOSTUNREACH…): the datagram is lost. Only
   * these say anything about the output.
   */
  onError: (err: Error, dest: Destination) => void;
  /**
   * An RTCP (port + 1) or SAP send or socket error: the report is lost, the audio is not (a receiver that listens
   * on the RTP port only answers RTCP with ICMP port unreachable).
   */
  onControlError: (err: Error, dest: Destination, what: 'rtcp' | 'sap') => void;
}

export type TransportFactory = (opts: UdpTransportOptions) => Transport;

/** True for IPv4 224.0.0.0/4 and IPv6 ff00::/8. */
export function isMulticast(address: string): boolean {
  if (isIPv4(address)) {
    const first = Number(address.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return isIP(address) === 6 && /^ff/i.test(address);
}

/** True for 255.255.255.255 and for the broadcast address of a local IPv4 interface. */
export function isBroadcast(address: string): boolean {
  if (!isIPv4(address)) return false;
  if (address === '255.255.255.255') return true;
  const target = ipv4ToInt(address);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || !a.netmask) continue;
      const mask = ipv4ToInt(a.netmask);
      if (mask === 0xffffffff) continue;
      const bcast = (ipv4ToInt(a.address) | ~mask) >>> 0;
      if (bcast === target) return true;
    }
  }
  return false;
}

/**
 * This machine's first non-internal address of `family` (link-local IPv6 apart), else loopback: the source
 * address named where no recipient is connected yet.
 */
export function machineAddress(family: 'IPv4' | 'IPv6'): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== family || a.internal) continue;
      if (family === 'IPv6' && /^fe80:/i.test(a.address)) continue;
      return a.address;
    }
  }
  return family === 'IPv6' ? '::1' : '127.0.0.1';
}

function ipv4ToInt(a: string): number {
  const p = a.split('.').map(Number);
  return (((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0) as number;
}

/** How `address` (an IP literal) is delivered when the mode is `auto`. */
export function classify(address: string): Delivery {
  if (isMulticast(address)) return 'multicast';
  if (isBroadcast(address)) return 'broadcast';
  return 'unicast';
}

/** Resolve a host name to one address (IP literals are returned as they are). */
export async function resolveAddress(address: string): Promise<string> {
  if (isIP(address)) return address;
  const r = await lookup(address);
  return r.address;
}

interface Peer {
  dest: Destination;
  key: string;
  rtp: Socket;
  rtcp: Socket;
}

function keyOf(d: Destination): string {
  return `${d.address}|${d.port}`;
}

/**
 * UDP to a set of recipients: two connected sockets per recipient (RTP and RTCP), so that every send skips the
 * address lookup and so that ICMP errors (ECONNREFUSED) are reported on the socket they belong to.
 */
export class UdpTransport implements Transport {
  #peers: Peer[] = [];
  #closed = false;
  #spare: Socket | undefined;
  #spareFamily: 'udp4' | 'udp6' | undefined;

  constructor(private readonly opts: UdpTransportOptions) {}

  sendRtp(packet: Buffer, done: SendDone): number {
    const peers = this.#peers;
    for (let i = 0; i < peers.length; i++) peers[i]!.rtp.send(packet, done);
    return peers.length;
  }

  sendRtcp(packet: Buffer): Promise<void> {
    const peers = this.#peers;
    if (peers.length === 0) return Promise.resolve();
    return Promise.all(
      peers.map(
        (p) =>
          new Promise<void>((resolve) =>
            p.rtcp.send(packet, (err) => {
              if (err) this.opts.onControlError(err, { address: p.dest.address, port: p.dest.port + 1 }, 'rtcp');
              resolve();
            }),
          ),
      ),
    ).then(() => undefined);
  }

  async sendTo(packet: Buffer, dest: Destination): Promise<void> {
    const family = isIP(dest.address) === 6 ? 'udp6' : 'udp4';
    if (!this.#spare || this.#spareFamily !== family) {
      if (this.#spare) closeQuietly(this.#spare);
      this.#spare = await this.#open(family, classify(dest.address));
      this.#spareFamily = family;
      this.#spare.on('error', (err) => this.opts.onControlError(err, dest, 'sap'));
    }
    const s = this.#spare;
    await new Promise<void>((resolve) =>
      s.send(packet, dest.port, dest.address, (err) => {
        if (err) this.opts.onControlError(err, dest, 'sap');
        resolve();
      }),
    );
  }

  async add(dest: Destination, delivery?: Delivery): Promise<Destination> {
    const address = await resolveAddress(dest.address);
    const d = { address, port: dest.port };
    const key = keyOf(d);
    if (this.#peers.some((p) => p.key === key)) return d;
    const how = delivery ?? classify(address);
    const family = isIP(address) === 6 ? 'udp6' : 'udp4';
    const rtp = await this.#open(family, how);
    let rtcp: Socket;
    try {
      rtcp = await this.#open(family, how);
      await Promise.all([connect(rtp, d.port, address), connect(rtcp, d.port + 1, address)]);
    } catch (err) {
      rtp.close();
      throw err;
    }
    rtp.on('error', (err) => this.opts.onError(err, d));
    rtcp.on('error', (err) => this.opts.onControlError(err, { address, port: d.port + 1 }, 'rtcp'));
    if (this.#closed) {
      rtp.close();
      rtcp.close();
      return d;
    }
    // a new array, so that a send loop in progress is not disturbed
    this.#peers = [...this.#peers, { dest: d, key, rtp, rtcp }];
    return d;
  }

  async remove(dest: Destination): Promise<boolean> {
    let address = dest.address;
    try {
      address = await resolveAddress(dest.address);
    } catch {
      return false;
    }
    const key = keyOf({ address, port: dest.port });
    const peer = this.#peers.find((p) => p.key === key);
    if (!peer) return false;
    this.#peers = this.#peers.filter((p) => p !== peer);
    closeQuietly(peer.rtp);
    closeQuietly(peer.rtcp);
    return true;
  }

  list(): Destination[] {
    return this.#peers.map((p) => ({ address: p.dest.address, port: p.dest.port }));
  }

  localAddress(): string | undefined {
    for (const p of this.#peers) {
      try {
        const a = p.rtp.address().address;
        if (a !== '0.0.0.0' && a !== '::') return a;
      } catch {
        // not bound
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const peers = this.#peers;
    this.#peers = [];
    for (const p of peers) {
      closeQuietly(p.rtp);
      closeQuietly(p.rtcp);
    }
    if (this.#spare) closeQuietly(this.#spare);
    this.#spare = undefined;
  }

  /** A bound socket set up for `how` (multicast TTL/loop/interface, broadcast permission). */
  async #open(family: 'udp4' | 'udp6', how: Delivery): Promise<Socket> {
    const s = createSocket({ type: family });
    // errors before the caller's handler is attached must not crash the process
    s.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, () => {
        s.off('error', reject);
        resolve();
      });
    });
    // RTCP receivers may send reports back; nobody reads them, the kernel drops them when the buffer is full.
    try {
      if (how === 'multicast') {
        s.setMulticastTTL(this.opts.ttl);
        s.setMulticastLoopback(this.opts.loop);
        if (this.opts.interface) s.setMulticastInterface(this.opts.interface);
      } else if (how === 'broadcast') {
        s.setBroadcast(true);
      }
    } catch (err) {
      s.close();
      throw err;
    }
    return s;
  }
}

function connect(s: Socket, port: number, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    s.connect(port, address, (err?: Error) => (err ? reject(err) : resolve()));
  });
}

function closeQuietly(s: Socket): void {
  try {
    s.close();
  } catch {
    // already closed
  }
}

export const udpTransport: TransportFactory = (opts) => new UdpTransport(opts);
