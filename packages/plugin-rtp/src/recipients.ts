import type { RtpOptions } from './options.js';
import { DELIVERY, type NativeSender } from './native.js';
import { classify, resolveAddress, type Delivery, type Destination, type Transport } from './transport.js';

type SocketOptions = Pick<RtpOptions, 'ttl' | 'loop' | 'interface'>;

/**
 * The recipients, in one place: each has its two connected sockets in the transport (RTP, and RTCP on port + 1;
 * the JS sender's path) and, with the native sender, its connected socket in the thread, known here by the id
 * the thread gave it. A destination is resolved once, here, and kept as the address it resolved to.
 */
export class Recipients {
  /** The native thread's id of each recipient, by `address|port` (resolved). */
  readonly #ids = new Map<string, number>();

  constructor(
    private readonly transport: Transport,
    private readonly native: NativeSender | undefined,
    private readonly opts: SocketOptions,
    /** The sender is closed: the thread takes no recipient and gives none back. */
    private readonly closed: () => boolean,
  ) {}

  /**
   * Add `dest` (idempotent): resolved, its sockets in the transport, then in the native thread. When the thread
   * refuses it, the transport's sockets stay (RTCP goes on; the caller retries or removes it).
   */
  async add(dest: Destination, delivery?: Delivery): Promise<Destination> {
    const d = await this.transport.add(dest, delivery);
    this.#nativeAdd(d, delivery ?? classify(d.address));
    return d;
  }

  /** Remove `dest` from the thread and the transport; false when it was not a recipient (or does not resolve). */
  async remove(dest: Destination): Promise<boolean> {
    let address: string;
    try {
      address = await resolveAddress(dest.address);
    } catch {
      return false;
    }
    const d = { address, port: dest.port };
    const key = keyOf(d);
    const id = this.#ids.get(key);
    if (id !== undefined) {
      this.#ids.delete(key);
      if (this.native && !this.closed()) this.native.removeRecipient(id);
    }
    return this.transport.remove(d);
  }

  /** The recipients, in the order they were added. */
  list(): Destination[] {
    return this.transport.list();
  }

  #nativeAdd(d: Destination, delivery: Delivery): void {
    const native = this.native;
    if (!native || this.closed()) return;
    const key = keyOf(d);
    if (this.#ids.has(key)) return;
    const label = `${d.address}:${d.port}`;
    const id = native.addRecipient(
      d.address,
      d.port,
      DELIVERY[delivery],
      this.opts.ttl,
      this.opts.loop,
      this.opts.interface ?? '',
      label,
    );
    this.#ids.set(key, id);
  }
}

function keyOf(d: Destination): string {
  return `${d.address}|${d.port}`;
}
