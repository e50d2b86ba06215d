import type { Clock, Logger, TimerHandle } from '@speakerd/plugin-sdk';
import { RTP_HEADER } from './payload.js';
import { FLUSHED, META, STAT, type Binding, type NativeErrorHandler, type NativeSender } from './native.js';
import { FILL_PACKETS, type PacketSender, type PacketShape, type SenderSession, type SentCounts } from './sender.js';

/**
 * JS hands packets to the sender thread once a batch, at the host's fill (the backend's `tickMs`), so the main
 * thread wakes about once a second (and the one-second `playing` report shares that wake-up).
 */
export const NATIVE_BATCH_MS = 1000;
/** Packets are handed over this far beyond the next batch (a late host tick does not starve the thread). */
export const NATIVE_SAFETY_MS = 100;
/**
 * A short packet (the last frames the host has written) waits for more frames until it is due this soon; a timer
 * hands it over then if none came (the end of the stream, or a decoder that fell behind).
 */
export const NATIVE_SHORT_MS = 30;
/**
 * A stream (re)starts this far ahead of the hand-over that carries its first packet (the anchor is fixed there,
 * not at the first write of the fill, and that packet is handed over on its own before the rest of the batch is
 * built), so the thread waits for it as it waits for any other: it is no later than the rest.
 */
export const NATIVE_START_MS = 4;

/**
 * The native sender: a thread of the addon (native/rtp_sender.cc) sends each packet at its deadline on
 * CLOCK_MONOTONIC from connected sockets of its own. At each host fill JS builds every packet due before the
 * horizon (`leadMs` + NATIVE_BATCH_MS + NATIVE_SAFETY_MS): it writes the headers into one buffer and says where
 * each payload lies in the ring; the thread's enqueue() copies header and payload into its slot (the one copy
 * after the host's write into the ring) before it returns. No JS runs per packet.
 */
export class ThreadSender implements PacketSender {
  readonly path = 'native' as const;
  readonly tickMs = NATIVE_BATCH_MS;
  /** The addon's sender (the thread and its sockets): the recipients register theirs with it. */
  readonly thread: NativeSender;
  readonly #nowMs: () => number;
  #running = false;
  #closed = false;
  /** Started, not yet anchored: the next hand-over anchors the stream (NATIVE_START_MS ahead). */
  #startPending = false;
  /** Stopped because the ring ran out while playing: see Timeline.restart. */
  #dry = false;
  /** A held short packet's timer, and when it fires. */
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  /** CLOCK_MONOTONIC ms minus clock.now() ms. */
  #offsetMs = 0;
  #shape: PacketShape = { framesPerPacket: 1, bpf: 4, rate: 44100, leadMs: 0 };
  #slots = 0;
  /** The headers of a batch, 12 bytes a packet; the thread copies each with its payload from the ring. */
  #headers: Buffer = Buffer.alloc(0);
  #headerViews: Buffer[] = [];
  #meta = new Float64Array(0);
  /** How far ahead of now a hand-over builds packets (lead + batch + safety). */
  #horizonMs = 0;
  #sentSeen = 0;
  readonly #stats = new Float64Array(STAT.length);
  /** held()'s own scratch for the thread's counters (a query leaves the pump's and RTCP's reading alone). */
  readonly #heldStats = new Float64Array(STAT.length);
  readonly #flushed = new Float64Array(FLUSHED.length);
  readonly #counts: SentCounts = { packets: 0, octets: 0, lastSentMs: -Infinity };

  constructor(
    private readonly s: SenderSession,
    private readonly clock: Clock,
    private readonly log: Logger,
    binding: Binding,
    onError: NativeErrorHandler,
    /** The thread asks for SCHED_FIFO and 1 ns timer slack. */
    realtime: boolean,
  ) {
    this.thread = new binding.Sender(onError, realtime);
    this.#nowMs = () => binding.nowMs();
    this.#syncOffset();
  }

  get running(): boolean {
    return this.#running;
  }

  configure(shape: PacketShape): number {
    this.flush(); // what the thread still holds is in the old format: take it back first
    this.#shape = shape;
    const n = shape.framesPerPacket;
    // the thread holds packets up to a horizon ahead; the ring what the next batch needs (the host tops it up at
    // every batch)
    this.#horizonMs = shape.leadMs + NATIVE_BATCH_MS + NATIVE_SAFETY_MS;
    const horizon = Math.ceil((this.#horizonMs * shape.rate) / 1000);
    this.#slots = Math.ceil(horizon / n) + 2 * FILL_PACKETS + 8;
    this.thread.configure(this.#slots, RTP_HEADER + n * shape.bpf);
    this.#headers = Buffer.alloc(this.#slots * RTP_HEADER);
    this.#headerViews = [];
    for (let i = 0; i < this.#slots; i++)
      this.#headerViews.push(this.#headers.subarray(i * RTP_HEADER, (i + 1) * RTP_HEADER));
    this.#meta = new Float64Array(this.#slots * META);
    // the ring holds the whole horizon and FILL_PACKETS packets more: a hand-over stops at the horizon, not at the
    // ring's end, so a fully buffered track leaves no short packet (and no timer) behind at each batch
    return horizon + FILL_PACKETS * n;
  }

  activate(): void {
    this.#syncOffset();
    this.flush();
  }

  start(): void {
    this.#running = true;
    // anchored by the hand-over that carries the first packet (#pump), not here at the fill's first write
    this.#startPending = true;
  }

  stop(): void {
    this.#halt(false);
  }

  handOver(): void {
    if (this.#running && !this.#closed) this.#pump(this.clock.now(), true);
  }

  held(): number {
    if (this.#closed) return 0;
    this.thread.stats(this.#heldStats);
    return this.#heldStats[STAT.queuedHostFrames]!;
  }

  /**
   * Drop what the thread has not sent: the sequence number and the timeline go back by what was dropped (the
   * sequence number counts packets sent). Returns the host's frames among them.
   */
  flush(): number {
    if (this.#closed) return 0;
    const out = this.#flushed;
    if (this.thread.flush(out) === 0) return 0;
    this.s.timeline.rewind(out[FLUSHED.packets]!, out[FLUSHED.frames]!, out[FLUSHED.marker] !== 0);
    return out[FLUSHED.hostFrames]!;
  }

  /** What the thread has actually sent. */
  counts(): SentCounts {
    if (this.#closed) return this.#counts;
    const st = this.#stats;
    this.thread.stats(st);
    const sent = st[STAT.sentPackets]!;
    this.#counts.packets = sent;
    this.#counts.octets = st[STAT.sentOctets]!;
    if (sent > 0) this.#counts.lastSentMs = st[STAT.lastSentMs]! - this.#offsetMs;
    return this.#counts;
  }

  close(): void {
    if (this.#closed) return;
    this.stop();
    this.flush();
    this.counts();
    this.#closed = true;
    this.thread.close(); // joins the thread: it waits on a condition variable, so this returns at once
  }

  #halt(dry: boolean): void {
    this.#dry = dry;
    this.#running = false;
    this.#startPending = false;
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #syncOffset(): void {
    // the smallest of a few readings: neither call is preempted in between
    let best = Infinity;
    let offset = 0;
    for (let i = 0; i < 3; i++) {
      const a = this.clock.now();
      const m = this.#nowMs();
      const b = this.clock.now();
      if (b - a < best) {
        best = b - a;
        offset = m - (a + b) / 2;
      }
    }
    this.#offsetMs = offset;
  }

  /** A short packet waits for more frames: hand it over at `at` unless a fill completes it first. */
  #holdShort(at: number, now: number): void {
    if (this.#timer && this.#timerAt <= at) return;
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        if (this.#running && !this.#closed) this.#pump(this.clock.now(), true);
      },
      Math.max(0, at - now),
    );
  }

  /**
   * Build every packet due before now + horizon from the ring (or silence) and hand them to the thread at once:
   * JS writes each header into #headers and says where its payload lies in the ring; the thread's enqueue()
   * copies both into its slot (one copy a packet). A short packet (the ring's last frames) only with `short`, and
   * only when it cannot wait for the next batch. A stream that starts here is anchored here, NATIVE_START_MS
   * ahead, and its first packet is handed over before the rest is built.
   */
  #pump(now: number, short: boolean): void {
    const { ring, timeline, catchUpMs } = this.s;
    const thread = this.thread;
    const st = this.#stats;
    thread.stats(st);
    const sent = st[STAT.sentPackets]!;
    if (sent > this.#sentSeen) {
      this.#sentSeen = sent;
      this.s.sent(now);
    }
    const silence = this.s.silent();
    let first = -1;
    if (this.#startPending) {
      if (ring.count === 0 && !silence) return; // nothing to start with
      this.#startPending = false;
      now = this.clock.now();
      timeline.restart(now + NATIVE_START_MS, this.#dry, catchUpMs);
      this.#dry = false;
      first = 0;
    }
    const room = Math.min(st[STAT.freeSlots]!, this.#slots);
    const n = this.#shape.framesPerPacket;
    const bpf = this.#shape.bpf;
    const limit = now + this.#horizonMs;
    const meta = this.#meta;
    let k = 0;
    let handed = 0;
    while (k < room) {
      const due = timeline.due(now, catchUpMs);
      if (due > limit) break;
      const m = k * META;
      let frames: number;
      let hostFrames: number;
      const queued = ring.count;
      if (queued >= n || (short && queued > 0 && due <= now + NATIVE_SHORT_MS)) {
        // a full packet, or the last few frames when they cannot wait any longer: the thread copies them from
        // the ring (this call does not return before it has), so the ring's head moves on now
        frames = hostFrames = Math.min(n, queued);
        ring.span(frames, meta, m + 1);
      } else if (queued === 0 && silence) {
        frames = n;
        hostFrames = 0;
        meta[m + 1] = -1;
        meta[m + 2] = n * bpf;
        meta[m + 3] = 0;
      } else {
        // nothing (or a short packet that can wait): dry once the thread has sent everything up to now
        if (queued === 0 && due <= now) {
          this.#running = false;
          this.#dry = true;
        } else if (queued > 0 && short) this.#holdShort(due - NATIVE_SHORT_MS, now);
        break;
      }
      this.s.header(this.#headerViews[k]!);
      meta[m] = due + this.#offsetMs;
      meta[m + 4] = frames;
      meta[m + 5] = hostFrames;
      timeline.advance(frames);
      k++;
      if (k === 1 && first === 0) {
        // a stream's first packet: to the thread at once, it is due NATIVE_START_MS from the anchor
        handed = thread.enqueue(ring.buf, this.#headers, meta, 0, 1);
        if (handed < 1) break;
      }
    }
    if (k > handed) {
      const took = thread.enqueue(ring.buf, this.#headers, meta, handed, k - handed);
      if (took < k - handed) this.log.warn({ took, k: k - handed }, 'the native sender refused packets (closed?)');
    }
    if (!this.#running && this.#timer) this.#halt(this.#dry);
  }
}
