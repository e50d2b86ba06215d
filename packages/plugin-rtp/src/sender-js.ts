import type { Clock, TimerHandle } from '@speakerd/plugin-sdk';
import { RTP_HEADER } from './payload.js';
import { PacketPool, type PoolEntry } from './packet-pool.js';
import type { Transport } from './transport.js';
import { FILL_PACKETS, type PacketSender, type PacketShape, type SenderSession, type SentCounts } from './sender.js';

/** How often the host offers frames on its own; the JS sender wakes it every FILL_PACKETS packets besides. */
export const HOST_TICK_MS = 300;
/** A timer that fires at most this early still sends the packet (Node's timers can fire up to ~1 ms early). */
export const EARLY_MS = 1;

/**
 * The JS sender: one timer on the injected clock, armed at the next packet's absolute deadline (`anchor +
 * frames / rate`); each wake-up sends every packet that is due through the transport and, every FILL_PACKETS
 * packets, asks the host to top up. Used on a virtual clock, with a test transport, or without the addon.
 * Each packet is built in a pooled buffer: the header, and the payload copied from the ring (the one copy).
 */
export class JsSender implements PacketSender {
  readonly path = 'js' as const;
  readonly tickMs = HOST_TICK_MS;
  #running = false;
  /** Stopped because the ring ran out while playing: see Timeline.restart. */
  #dry = false;
  #timer: TimerHandle | undefined;
  readonly #pool: PacketPool;
  #silence: Buffer = Buffer.alloc(0);
  #shape: PacketShape = { framesPerPacket: 1, bpf: 4, rate: 44100, leadMs: 0 };
  readonly #counts: SentCounts = { packets: 0, octets: 0, lastSentMs: -Infinity };

  constructor(
    private readonly s: SenderSession,
    private readonly clock: Clock,
    private readonly transport: Transport,
    /** A packet the kernel refused after the send was queued (its callback). */
    onSendFailed: (err: Error) => void,
  ) {
    this.#pool = new PacketPool(onSendFailed);
  }

  get running(): boolean {
    return this.#running;
  }

  configure(shape: PacketShape): number {
    this.#shape = shape;
    const n = shape.framesPerPacket;
    this.#pool.configure(RTP_HEADER + n * shape.bpf);
    this.#silence = Buffer.alloc(n * shape.bpf);
    // room for the lead and FILL_PACKETS packets more: the host tops up every FILL_PACKETS packets
    return Math.floor((shape.leadMs * shape.rate) / 1000) + FILL_PACKETS * n;
  }

  activate(): void {}

  start(): void {
    this.#running = true;
    const now = this.clock.now();
    this.s.timeline.restart(now, this.#dry, this.s.catchUpMs);
    this.#dry = false;
    this.#schedule(this.s.timeline.deadline(), now);
  }

  stop(): void {
    this.#dry = false;
    this.#halt();
  }

  handOver(): void {}

  held(): number {
    return 0;
  }

  flush(): number {
    return 0;
  }

  counts(): SentCounts {
    return this.#counts;
  }

  close(): void {
    this.stop();
  }

  #halt(): void {
    this.#running = false;
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(at: number, now: number): void {
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = this.clock.setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - now)));
  }

  /** One wake-up: send every packet that is due, then ask the host to top up. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (!this.#running) return;
    const { ring, timeline, catchUpMs } = this.s;
    const now = this.clock.now();
    const n = this.#shape.framesPerPacket;
    let sent = false;
    for (;;) {
      if (timeline.due(now, catchUpMs) > now + EARLY_MS) break;
      if (ring.count > 0) this.#sendPacket(Math.min(n, ring.count), now);
      else if (this.s.silent()) this.#sendSilence(now);
      else {
        // dry: the next write goes on (caught up) or starts a new talkspurt (Timeline.restart)
        this.#running = false;
        this.#dry = true;
        break;
      }
      sent = true;
    }
    if (this.#running) this.#schedule(timeline.deadline(), now);
    if (sent && !this.s.paused() && ring.room >= FILL_PACKETS * n) this.s.wake();
    else if (!this.#running) this.s.wake();
  };

  #sendPacket(frames: number, now: number): void {
    const e = this.#pool.next();
    this.s.header(e.buf);
    this.s.ring.take(e.buf, RTP_HEADER, frames);
    this.#emit(e, frames, now);
  }

  #sendSilence(now: number): void {
    const e = this.#pool.next();
    this.s.header(e.buf);
    this.#silence.copy(e.buf, RTP_HEADER);
    this.#emit(e, this.#shape.framesPerPacket, now);
  }

  #emit(e: PoolEntry, frames: number, now: number): void {
    const bytes = frames * this.#shape.bpf;
    const len = RTP_HEADER + bytes;
    const packet = len === e.buf.length ? e.buf : e.buf.subarray(0, len);
    // a transport may complete synchronously: count the sends after the call, not before it
    const sends = this.transport.sendRtp(packet, e.done);
    e.pending += sends;
    this.s.timeline.advance(frames);
    this.#counts.packets++;
    this.#counts.octets += bytes;
    this.#counts.lastSentMs = now;
    this.s.sent(now);
  }
}
