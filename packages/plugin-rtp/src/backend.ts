import { randomBytes } from 'node:crypto';
import { isIP, isIPv6 } from 'node:net';
import {
  ErrorCodes,
  OutputState,
  RateLimitedLog,
  RealClock,
  SpeakerdError,
  TOKENS,
  bytesPerFrame,
  formatToString,
  inject,
  injectable,
  reportRealtime,
  type Backend,
  type Clock,
  type CommandHandler,
  type CommandMessage,
  type HostEvents,
  type Logger,
  type PluginContext,
  type SampleFormat,
  type TimerHandle,
} from '@speakerd/plugin-sdk';
import type { RtpOptions } from './options.js';
import { IP_UDP_OVERHEAD, RTP_HEADER, framesPerPacket, payloadFor, type Payload } from './payload.js';
import { RtcpReporter, type RtcpSession } from './rtcp-reporter.js';
import { Announcer } from './announce.js';
import { PacketPool, type PoolEntry } from './packet-pool.js';
import { FrameRing } from './ring.js';
import { Timeline } from './timeline.js';
import { Recipients } from './recipients.js';
import { errorText } from './errors.js';
import { wireOrder, type WireOrder } from './channel-order.js';
import { FLUSHED, META, STAT, loadNative, type NativeSender } from './native.js';
import {
  classify,
  isMulticast,
  machineAddress,
  resolveAddress,
  udpTransport,
  type Delivery,
  type Destination,
  type Transport,
  type TransportFactory,
} from './transport.js';

/** How often the host offers frames on its own; the backend wakes it after each packet it sends. */
export const HOST_TICK_MS = 300;
/** A timer that fires at most this early still sends the packet (Node's timers can fire up to ~1 ms early). */
export const EARLY_MS = 1;
/** Errors stop being reported as `lost` once sending has worked this long without one. */
export const RECOVER_MS = 3000;
/** Retry interval for a destination that could not be set up (no route yet, DNS down). */
export const RETRY_MS = 5000;
/** RTCP/SAP send failures are logged at most once per this interval, with a count. */
export const CONTROL_LOG_MS = 60_000;

const PLUGIN = 'rtp';
/** The host is asked to top up the queue once this many packets' worth of room is free (fewer host fills). */
const FILL_PACKETS = 4;
const NTP_OFFSET_S = 2_208_988_800;

/**
 * Native path: JS hands packets to the sender thread once a batch, at the host's fill (the backend's `tickMs`), so
 * the main thread wakes about once a second (and the one-second `playing` report shares that wake-up).
 */
export const NATIVE_BATCH_MS = 1000;
/** Native path: packets are handed over this far beyond the next batch (a late host tick does not starve it). */
export const NATIVE_SAFETY_MS = 100;

/**
 * Native path: a short packet (the last frames the host has written) waits for more frames until it is due this
 * soon; a timer hands it over then if none came (the end of the stream, or a decoder that fell behind).
 */
export const NATIVE_SHORT_MS = 30;

/**
 * Native path: a stream (re)starts this far ahead of the hand-over that carries its first packet (the anchor is
 * fixed there, not at the first write of the fill, and that packet is handed over on its own before the rest of
 * the batch is built), so the thread waits for it as it waits for any other: it is no later than the rest.
 */
export const NATIVE_START_MS = 4;

/**
 * Native path: an RTCP report due within this much of a host fill goes out in that wake-up; its own timer (the
 * fallback, when no fill comes: idle, paused) is armed NATIVE_BATCH_MS + NATIVE_SAFETY_MS later than that.
 */
export const NATIVE_RTCP_SHARE_MS = 20;

/** Which sender a backend uses: the native thread, or one JS timer per packet. */
export type SenderPath = 'native' | 'js';

/** True when `clock` is the real monotonic clock (performance.now(), i.e. CLOCK_MONOTONIC). */
function isRealClock(clock: Clock): boolean {
  if (clock instanceof RealClock) return true;
  // a second copy of the SDK (another module instance): same class by name and same time base
  return clock.constructor?.name === 'RealClock' && Math.abs(clock.now() - performance.now()) < 5;
}

/**
 * The `rtp` backend: L16/L24 over RTP/UDP (RFC 3550, RFC 3551), paced on the injected monotonic clock, with an
 * SDP file, RTCP sender reports and BYE, optional SAP announcements, and recipients added at run time.
 *
 * Frames the host writes are copied into a ring; a single timer sends each packet at its absolute deadline
 * (`anchor + frames / rate`) and, in the same wake-up, asks the host for more (one wake-up per packet). See the
 * package README for the wire details.
 */
@injectable()
export class RtpBackend implements Backend {
  readonly pacing = 'clock' as const;
  /** How often the host fills: every packet wakes it on the JS path; on the native path its fill is the batch. */
  get tickMs(): number {
    return this.#native ? NATIVE_BATCH_MS : HOST_TICK_MS;
  }
  /** flush() takes back only packets not yet sent; the stream goes on seamlessly when refilled. */
  readonly flushIsSeamless = true;
  readonly commands: Readonly<Record<string, CommandHandler>>;

  // ------------------------------------------------------------------ stream identity (RFC 3550 5.1)
  readonly ssrc: number;
  /** Sequence number, RTP timestamp, marker, deadlines: one rule for both senders. */
  readonly #timeline: Timeline;

  // ------------------------------------------------------------------ format
  #payload: Payload | undefined;
  #format: SampleFormat | undefined;
  #bpf = 4;
  /** Frames in a full packet. */
  #framesPerPacket = 1;

  // ------------------------------------------------------------------ queue of frames not yet sent
  readonly #ring = new FrameRing();
  /** Channel order on the wire (channel-order.ts): an fmtp name to announce, a reordering of the host's frames. */
  #wire: WireOrder = { channelOrder: undefined, map: undefined };
  readonly #pool = new PacketPool((err) => this.#sendFailed(err, undefined));
  #silence: Buffer = Buffer.alloc(0);

  // ------------------------------------------------------------------ timeline
  #running = false;
  #timer: TimerHandle | undefined;
  /** When #timer fires (native path: a held short packet). */
  #timerAt = Infinity;

  #active = false;
  #paused = false;
  #closed = false;

  // ------------------------------------------------------------------ counters (RTCP SR)
  #packets = 0;
  #octets = 0;
  #lastSentMs = -Infinity;

  // ------------------------------------------------------------------ RTCP / SAP
  readonly #rtcp: RtcpReporter;
  /** SDES CNAME: fixed by `cname`, else made once the address the stream leaves from is known. */
  readonly #announcer: Announcer;
  #sessionId: number;

  // ------------------------------------------------------------------ native sender (real clock only)
  #native: NativeSender | undefined;
  /** Why the JS sender is used (undefined on the native path). */
  readonly #nativeWhy: string | undefined;
  #nativeNow: (() => number) | undefined;
  /** CLOCK_MONOTONIC ms minus clock.now() ms. */
  #offsetMs = 0;
  #slotBytes = 0;
  #slots = 0;
  /** The headers of a batch, 12 bytes a packet; the thread copies each with its payload from #ring. */
  #headers: Buffer = Buffer.alloc(0);
  #headerViews: Buffer[] = [];
  #meta = new Float64Array(0);
  /** Native path: started, not yet anchored; the next hand-over anchors the stream (NATIVE_START_MS ahead). */
  #startPending = false;
  /** The sender stopped because the frames ran out while playing: see Timeline.restart. */
  #dry = false;
  readonly #stats = new Float64Array(STAT.length);
  /** delay()'s own scratch for the thread's counters (a query leaves the pump's and RTCP's reading alone). */
  readonly #delayStats = new Float64Array(STAT.length);
  readonly #flushed = new Float64Array(FLUSHED.length);
  /** Frames handed over per native batch at most (lead + batch + safety). */
  #horizonMs = 0;
  #sentSeen = 0;

  // ------------------------------------------------------------------ transport and errors
  readonly #transport: Transport;
  /** The recipients, for the transport and the native thread at once. */
  readonly #recipients: Recipients;
  #destination: Destination | undefined;
  #delivery: Delivery = 'unicast';
  #retryTimer: TimerHandle | undefined;
  /** lost/ok as reported to the host (once per change). */
  readonly #output: OutputState;
  #lastErrorMs = -Infinity;
  readonly #errorLog: RateLimitedLog;
  /** RTCP and SAP send failures: one line a minute, with the count since the last one. */
  readonly #controlLog: RateLimitedLog;

  constructor(
    @inject(TOKENS.Options) private readonly opts: RtpOptions,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Events) private readonly events: HostEvents,
    @inject(TOKENS.Context) private readonly context: PluginContext,
    /** Not injected: the host always gets UDP. Tests pass their own transport. */
    transportFactory: TransportFactory = udpTransport,
  ) {
    const r = randomBytes(10);
    this.ssrc = r.readUInt32BE(0);
    this.#timeline = new Timeline(r.readUInt16BE(4), r.readUInt32BE(6));
    this.#sessionId = Math.floor(clock.wallNow() / 1000) + NTP_OFFSET_S;
    this.#announcer = new Announcer(opts, clock, context.configDir, this.#sessionId, {
      origin: (v6) => this.#origin(v6),
      sendTo: (packet, to) => this.#transport.sendTo(packet, to),
    });
    this.#errorLog = new RateLimitedLog(() => this.clock.now(), 5, 10_000);
    this.#controlLog = new RateLimitedLog(() => this.clock.now(), 1, CONTROL_LOG_MS);
    this.#output = new OutputState(events);
    if (!opts.native) this.#nativeWhy = 'rtp.native is false';
    else if (transportFactory !== udpTransport) this.#nativeWhy = 'a test transport is in use';
    else if (!isRealClock(clock)) this.#nativeWhy = 'the clock is not the real monotonic clock';
    else {
      const { binding, why } = loadNative();
      this.#nativeWhy = why;
      if (binding) {
        this.#native = new binding.Sender(
          (code, errno, count, to, message) => this.#nativeFailed(code, errno, count, to, message),
          opts.realtime !== false,
        );
        reportRealtime(log, opts.realtime, this.#native.realtime(), 'rtp sender thread');
        this.#nativeNow = () => binding.nowMs();
        this.#syncOffset();
      }
    }
    this.#transport = transportFactory({
      ttl: opts.ttl,
      loop: opts.loop,
      interface: opts.interface,
      onError: (err, dest) => this.#sendFailed(err, dest),
      onControlError: (err, dest, what) => this.#controlFailed(err, dest, what),
    });
    this.#recipients = new Recipients(this.#transport, this.#native, opts, () => this.#closed);
    // native: the report goes out with the host's fill once it is due (endFill); its timer fires only when no
    // fill came in time (idle, paused), so streaming costs no wake-up of its own for RTCP
    this.#rtcp = new RtcpReporter(
      clock,
      this.#rtcpSession(),
      this.#native ? NATIVE_BATCH_MS + NATIVE_SAFETY_MS : 0,
      opts.cname,
    );
    this.commands = {
      'add-recipient': (m) => this.#addRecipient(m),
      'remove-recipient': (m) => this.#removeRecipient(m),
    };
  }

  // =================================================================== Backend contract

  /** A query: the wire format for `requested` (big-endian L16/L24). Allocates nothing, writes no SDP file. */
  negotiate(requested: SampleFormat): SampleFormat {
    return payloadFor(requested, this.opts.payloadType).format;
  }

  /** The format is agreed: size the ring and the native slots, and write the SDP file. */
  configure(format: SampleFormat): void {
    if (this.#closed) throw new SpeakerdError(ErrorCodes.BACKEND, 'the backend is closed', { plugin: PLUGIN });
    this.#configure(format);
  }

  async init(): Promise<void> {
    const { opts } = this;
    let address: string;
    try {
      address = await resolveAddress(opts.destination);
    } catch (err) {
      if (opts.mode === 'request') address = opts.destination;
      else
        throw new SpeakerdError(
          ErrorCodes.CONFIG,
          `rtp.destination: cannot resolve ${JSON.stringify(opts.destination)}: ${errorText(err)}`,
          { plugin: PLUGIN },
        );
    }
    this.#destination = { address, port: opts.port };
    const auto = isIP(address) ? classify(address) : 'unicast';
    switch (opts.mode) {
      case 'multicast':
        if (!isMulticast(address))
          throw new SpeakerdError(ErrorCodes.CONFIG, `rtp.destination: ${address} is not a multicast address`, {
            plugin: PLUGIN,
          });
        this.#delivery = 'multicast';
        break;
      case 'broadcast':
        if (isIPv6(address))
          throw new SpeakerdError(ErrorCodes.CONFIG, 'rtp.destination: IPv6 has no broadcast; use multicast', {
            plugin: PLUGIN,
          });
        this.#delivery = 'broadcast';
        break;
      case 'unicast':
        this.#delivery = 'unicast';
        break;
      default:
        this.#delivery = auto;
    }
    if (this.#native) this.log.info({ sender: 'native' }, 'rtp sender: native thread (CLOCK_MONOTONIC)');
    else this.log.info({ sender: 'js', why: this.#nativeWhy }, `rtp sender: JavaScript timers (${this.#nativeWhy})`);
    if (opts.mode !== 'request') await this.#connectDestination();
    this.log.info(
      { destination: `${address}:${opts.port}`, mode: opts.mode, delivery: this.#delivery, ssrc: this.ssrc },
      'rtp ready',
    );
  }

  async activate(format: SampleFormat): Promise<void> {
    if (this.#closed) throw new SpeakerdError(ErrorCodes.BACKEND, 'the backend is closed', { plugin: PLUGIN });
    const want = payloadFor(format, this.opts.payloadType).format;
    if (!this.#format || formatToString(want) !== formatToString(this.#format)) this.#configure(format);
    this.#active = true;
    this.#ring.clear(true);
    if (this.#native) {
      this.#syncOffset();
      this.#nativeFlush();
    }
    this.#rtcp.start();
    this.#announcer.start();
    if (this.#paused && this.opts.pauseMode === 'silence') {
      this.#start();
      this.#handOver();
    }
  }

  /** A query: room in the ring. Sends nothing (the native hand-over is {@link endFill}'s). */
  writable(): number {
    if (!this.#active || this.#paused) return 0;
    return this.#ring.room;
  }

  write(data: Uint8Array): number {
    if (!this.#active || this.#paused) return 0;
    const frames = this.#ring.write(data, this.#wire.map);
    if (frames <= 0) return 0;
    // native: nothing is handed over here; the host writes a fill in chunks and then calls endFill()
    if (!this.#running) this.#start();
    return frames;
  }

  /**
   * The host's fill is done. Native path: the fill is the batch: hand the thread every packet that falls due
   * before the next one (silence packets while paused in pauseMode "silence"); frames short of a packet wait for
   * the next fill unless they fall due within NATIVE_SHORT_MS (a timer hands them over then). JS path: nothing to
   * do (its own timer sends each packet at its deadline).
   */
  endFill(): void {
    this.#handOver();
    // native: a report that is due shares this wake-up (its own timer is only the fallback)
    if (this.#native) this.#rtcp.sendIfDue(NATIVE_RTCP_SHARE_MS);
  }

  /** A query: frames in the ring plus the host frames the native thread still holds (a read of its counters). */
  delay(): number {
    if (!this.#native) return this.#ring.count;
    const st = this.#delayStats;
    this.#native.stats(st);
    return this.#ring.count + st[STAT.queuedHostFrames]!;
  }

  flush(): number {
    return this.#ring.clear() + this.#nativeFlush();
  }

  pause(): void {
    this.#paused = true;
    if (this.opts.pauseMode === 'silence') {
      if (this.#active && !this.#running) this.#start();
      // native: silence from now on (the host has just flushed what the thread held), not only at the next fill
      this.#handOver();
      return;
    }
    this.#stop();
  }

  resume(): void {
    this.#paused = false;
    // silence queued ahead in the thread would delay the music: take it back (never sent, so no gap on the wire)
    if (this.#native && this.opts.pauseMode === 'silence') this.#nativeFlush();
    // the host writes next; a stopped stream restarts then, with the marker bit and the timestamp moved on
  }

  async idle(): Promise<void> {
    this.#active = false;
    this.#ring.clear();
    this.#nativeFlush();
    this.#stop();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#active = false;
    this.#stop();
    if (this.#native) {
      this.#nativeFlush();
      this.#syncNative();
      this.#native.close(); // joins the thread: it waits on a condition variable, so this returns at once
    }
    if (this.#retryTimer) this.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#rtcp.stop();
    this.#announcer.stop();
    try {
      const sends: Promise<void>[] = [this.#rtcp.bye('speakerd stopped')];
      sends.push(this.#announcer.withdraw());
      await withTimeout(Promise.all(sends), 1000);
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'sending BYE failed');
    }
    await this.#transport.close();
  }

  // =================================================================== introspection (tests, status)

  /** Frames per full packet and its duration in ms. */
  get packetInfo(): { frames: number; ms: number; payloadType: number; encodingName: string } | undefined {
    const p = this.#payload;
    if (!p) return undefined;
    return {
      frames: this.#framesPerPacket,
      ms: (this.#framesPerPacket * 1000) / p.format.rate,
      payloadType: p.payloadType,
      encodingName: p.encodingName,
    };
  }

  /** Which sender is in use, and why not the native one. */
  get sender(): { path: SenderPath; why?: string } {
    return this.#native ? { path: 'native' } : { path: 'js', why: this.#nativeWhy };
  }

  /** The SDP text describing the stream (also written to `rtp.sdp`). */
  get sdp(): string | undefined {
    return this.#announcer.sdp;
  }

  // =================================================================== format and buffers

  #configure(requested: SampleFormat): void {
    const payload = payloadFor(requested, this.opts.payloadType);
    const format = payload.format;
    this.#payload = payload;
    this.#format = format;
    this.#wire = wireOrder(format.channels, this.opts.channelOrder);
    this.#bpf = bytesPerFrame(format);
    this.#framesPerPacket = framesPerPacket(format, this.opts.mtu, this.opts);
    const ip = IP_UDP_OVERHEAD + RTP_HEADER + this.#framesPerPacket * this.#bpf;
    if (ip > this.opts.mtu)
      this.log.info(
        `${formatToString(format)}: ${ip}-byte packets (rtp.minPtimeMs ${this.opts.minPtimeMs}) exceed rtp.mtu ` +
          `${this.opts.mtu}; IP sends them in fragments`,
      );
    this.#timeline.configure(format.rate, this.opts.timestampsInSamples ? format.channels : 1);
    const n = this.#framesPerPacket;
    const lead = Math.floor((this.opts.leadMs * format.rate) / 1000);
    // room for the lead and FILL_PACKETS packets more: the host tops up every FILL_PACKETS packets
    let capacity = lead + FILL_PACKETS * n;
    if (this.#native) {
      this.#nativeFlush(); // what the thread still holds is in the old format: take it back first
      // native: the thread holds packets up to a horizon ahead; the ring what the next batch needs (the host tops
      // it up at every batch)
      this.#horizonMs = this.opts.leadMs + NATIVE_BATCH_MS + NATIVE_SAFETY_MS;
      const horizon = Math.ceil((this.#horizonMs * format.rate) / 1000);
      // the ring holds the whole horizon and FILL_PACKETS packets more: a hand-over stops at the horizon, not at
      // the ring's end, so a fully buffered track leaves no short packet (and no timer) behind at each batch
      capacity = horizon + FILL_PACKETS * n;
      this.#slots = Math.ceil(horizon / n) + 2 * FILL_PACKETS + 8;
      this.#slotBytes = RTP_HEADER + n * this.#bpf;
      this.#native.configure(this.#slots, this.#slotBytes);
      this.#headers = Buffer.alloc(this.#slots * RTP_HEADER);
      this.#headerViews = [];
      for (let i = 0; i < this.#slots; i++)
        this.#headerViews.push(this.#headers.subarray(i * RTP_HEADER, (i + 1) * RTP_HEADER));
      this.#meta = new Float64Array(this.#slots * META);
    }
    this.#ring.configure(capacity, this.#bpf);
    const size = RTP_HEADER + n * this.#bpf;
    this.#pool.configure(size);
    this.#silence = Buffer.alloc(n * this.#bpf);
    this.#announcer.describe({
      payload,
      destination: this.#destination ?? { address: this.opts.destination, port: this.opts.port },
      ptimeMs: (this.#framesPerPacket * 1000) / format.rate,
      channelOrder: this.#wire.channelOrder,
    });
  }

  // =================================================================== pacing

  /**
   * Start sending (after activate, resume, or a dry spell): a new talkspurt with the timestamp moved on by the time
   * that passed, unless the stream ran dry and is back within catchUpMs (Timeline.restart).
   */
  #start(): void {
    this.#running = true;
    if (this.#native) {
      // native: anchored by the hand-over that carries the first packet (#pump), not here at the fill's first write
      this.#startPending = true;
      return;
    }
    const now = this.clock.now();
    this.#timeline.restart(now, this.#dry, this.opts.catchUpMs);
    this.#dry = false;
    this.#schedule(this.#timeline.deadline(), now);
  }

  /** Stop sending; `dry`: because the frames ran out while playing (not a pause, idle or close). */
  #stop(dry = false): void {
    this.#dry = dry;
    this.#running = false;
    this.#startPending = false;
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #schedule(at: number, now: number): void {
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = this.clock.setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - now)));
  }

  /** One wake-up: send every packet that is due, then ask the host to top up. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (!this.#running || this.#closed) return;
    const now = this.clock.now();
    const n = this.#framesPerPacket;
    let sent = false;
    for (;;) {
      if (this.#timeline.due(now, this.opts.catchUpMs) > now + EARLY_MS) break;
      if (this.#ring.count > 0) this.#sendPacket(Math.min(n, this.#ring.count), now);
      else if (this.#paused && this.opts.pauseMode === 'silence') this.#sendSilence(now);
      else {
        // dry: the next write goes on (caught up) or starts a new talkspurt (Timeline.restart)
        this.#running = false;
        this.#dry = true;
        break;
      }
      sent = true;
    }
    if (this.#running) this.#schedule(this.#timeline.deadline(), now);
    if (sent && !this.#paused && this.#ring.room >= FILL_PACKETS * n) this.events.wake();
    else if (!this.#running) this.events.wake();
  };

  #sendPacket(frames: number, now: number): void {
    const e = this.#pool.next();
    const buf = e.buf;
    this.#header(buf);
    this.#ring.take(buf, RTP_HEADER, frames);
    this.#emit(e, frames, now);
  }

  #sendSilence(now: number): void {
    const n = this.#framesPerPacket;
    const e = this.#pool.next();
    this.#header(e.buf);
    this.#silence.copy(e.buf, RTP_HEADER);
    this.#emit(e, n, now);
  }

  #header(buf: Buffer): void {
    this.#timeline.header(buf, this.#payload!.payloadType, this.ssrc);
  }

  #emit(e: PoolEntry, frames: number, now: number): void {
    const bytes = frames * this.#bpf;
    const len = RTP_HEADER + bytes;
    const packet = len === e.buf.length ? e.buf : e.buf.subarray(0, len);
    // a transport may complete synchronously: count the sends after the call, not before it
    const sends = this.#transport.sendRtp(packet, e.done);
    e.pending += sends;
    this.#timeline.advance(frames);
    this.#packets++;
    this.#octets += bytes;
    this.#lastSentMs = now;
    this.#sendingWorks(now);
  }

  // =================================================================== native sender

  #syncOffset(): void {
    if (!this.#nativeNow) return;
    // the smallest of a few readings: neither call is preempted in between
    let best = Infinity;
    let offset = 0;
    for (let i = 0; i < 3; i++) {
      const a = this.clock.now();
      const m = this.#nativeNow();
      const b = this.clock.now();
      if (b - a < best) {
        best = b - a;
        offset = m - (a + b) / 2;
      }
    }
    this.#offsetMs = offset;
  }

  /**
   * Drop what the thread has not sent: the sequence number and the timeline go back by what was dropped (the
   * sequence number counts packets sent). Returns the host's frames among them.
   */
  #nativeFlush(): number {
    const native = this.#native;
    if (!native || this.#closed) return 0;
    const out = this.#flushed;
    if (native.flush(out) === 0) return 0;
    this.#timeline.rewind(out[FLUSHED.packets]!, out[FLUSHED.frames]!, out[FLUSHED.marker] !== 0);
    return out[FLUSHED.hostFrames]!;
  }

  /** Counters for RTCP from the thread: what was actually sent. */
  #syncNative(): void {
    const native = this.#native;
    if (!native) return;
    const st = this.#stats;
    native.stats(st);
    const sent = st[STAT.sentPackets]!;
    this.#packets = sent;
    this.#octets = st[STAT.sentOctets]!;
    if (sent > 0) this.#lastSentMs = st[STAT.lastSentMs]! - this.#offsetMs;
  }

  /** Native path, running: hand the thread what is due before the next batch (a short packet only if due soon). */
  #handOver(): void {
    if (this.#native && this.#running && !this.#closed) this.#pump(this.clock.now(), true);
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
   * JS writes each header into #headers and says where its payload lies in #ring; the thread's enqueue() copies
   * both into its slot (one copy a packet). A short packet (the ring's last frames) only with `short`, and only
   * when it cannot wait for the next batch. A stream that starts here is anchored here, NATIVE_START_MS ahead,
   * and its first packet is handed over before the rest is built.
   */
  #pump(now: number, short: boolean): void {
    const native = this.#native!;
    const st = this.#stats;
    native.stats(st);
    const sent = st[STAT.sentPackets]!;
    if (sent > this.#sentSeen) {
      this.#sentSeen = sent;
      this.#sendingWorks(now);
    }
    let first = -1;
    if (this.#startPending) {
      if (this.#ring.count === 0 && !(this.#paused && this.opts.pauseMode === 'silence')) return; // nothing to start with
      this.#startPending = false;
      now = this.clock.now();
      this.#timeline.restart(now + NATIVE_START_MS, this.#dry, this.opts.catchUpMs);
      this.#dry = false;
      first = 0;
    }
    const room = Math.min(st[STAT.freeSlots]!, this.#slots);
    const n = this.#framesPerPacket;
    const bpf = this.#bpf;
    const limit = now + this.#horizonMs;
    const silence = this.#paused && this.opts.pauseMode === 'silence';
    const meta = this.#meta;
    let k = 0;
    let handed = 0;
    while (k < room) {
      const due = this.#timeline.due(now, this.opts.catchUpMs);
      if (due > limit) break;
      const m = k * META;
      let frames: number;
      let hostFrames: number;
      const queued = this.#ring.count;
      if (queued >= n || (short && queued > 0 && due <= now + NATIVE_SHORT_MS)) {
        // a full packet, or the last few frames when they cannot wait any longer: the thread copies them from
        // the ring (this call does not return before it has), so the ring's head moves on now
        frames = hostFrames = Math.min(n, queued);
        this.#ring.span(frames, meta, m + 1);
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
      this.#header(this.#headerViews[k]!);
      meta[m] = due + this.#offsetMs;
      meta[m + 4] = frames;
      meta[m + 5] = hostFrames;
      this.#timeline.advance(frames);
      k++;
      if (k === 1 && first === 0) {
        // a stream's first packet: to the thread at once, it is due NATIVE_START_MS from the anchor
        handed = native.enqueue(this.#ring.buf, this.#headers, meta, 0, 1);
        if (handed < 1) break;
      }
    }
    if (k > handed) {
      const took = native.enqueue(this.#ring.buf, this.#headers, meta, handed, k - handed);
      if (took < k - handed) this.log.warn({ took, k: k - handed }, 'the native sender refused packets (closed?)');
    }
    if (!this.#running && this.#timer) this.#stop(this.#dry);
  }

  /** A report from the thread: `count` sends failed since the last one, the last with `code`. */
  #nativeFailed(code: string, errno: number, count: number, to: string, message: string): void {
    const err = Object.assign(new Error(message), { code, errno: -errno });
    this.#sendFailed(err, undefined, to, count);
  }

  // =================================================================== errors

  /**
   * An RTCP report or a SAP announcement was not sent. Logged (once a minute, with a count), never a change of
   * `backendState`: the audio goes out on the RTP sockets, whose errors alone say whether the output works.
   */
  /** A packet went out at `now` (either sender): `ok` again once RECOVER_MS have passed since the last error. */
  #sendingWorks(now: number): void {
    if (this.#output.state === 'lost' && now - this.#lastErrorMs > RECOVER_MS && this.#output.ok('sending works again'))
      this.log.info('sending works again');
  }

  #controlFailed(err: Error, dest: Destination, what: 'rtcp' | 'sap'): void {
    if (this.#closed) return;
    const { log, suppressed } = this.#controlLog.shouldLog();
    if (!log) return;
    const where = `${dest.address}:${dest.port}`;
    this.log.warn(
      { code: (err as NodeJS.ErrnoException).code, to: where, what, ...(suppressed > 0 ? { suppressed } : {}) },
      `${what === 'rtcp' ? 'RTCP' : 'SAP'} to ${where} failed (${errorText(err)}); ` +
        `the report is dropped, the audio is not affected` +
        (suppressed > 0 ? ` (${suppressed} more RTCP/SAP failures in the last minute)` : ''),
    );
  }

  #sendFailed(err: Error, dest: Destination | undefined, to?: string, count = 1): void {
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    const where =
      to || (dest ? `${dest.address}:${dest.port}` : e.address ? `${e.address}:${e.port ?? '?'}` : 'a recipient');
    this.#lastErrorMs = this.clock.now();
    const { log, suppressed } = this.#errorLog.shouldLog();
    if (log)
      this.log.warn(
        {
          code: e.code,
          to: where,
          ...(count > 1 ? { failed: count } : {}),
          ...(suppressed > 0 ? { suppressed } : {}),
        },
        `sending to ${where} failed (${errorText(err)}); the datagram is dropped`,
      );
    if (!this.#closed) this.#output.lost(`sending to ${where} failed: ${errorText(err)}`);
  }

  async #connectDestination(): Promise<void> {
    const dest = this.#destination!;
    try {
      await this.#recipients.add(dest, this.#delivery);
      if (this.#output.state === 'lost' && this.#retryTimer !== undefined)
        this.#output.ok(`sending to ${dest.address}:${dest.port}`);
      this.#retryTimer = undefined;
    } catch (err) {
      this.#sendFailed(err as Error, dest);
      this.#retryTimer = this.clock.setTimeout(() => {
        if (!this.#closed) void this.#connectDestination();
      }, RETRY_MS);
    }
  }

  // =================================================================== RTCP

  /** What RTCP reads of this session: the counts of packets sent, the timeline, the recipients. */
  #rtcpSession(): RtcpSession {
    return {
      ssrc: this.ssrc,
      sync: () => this.#syncNative(),
      sent: () => ({ packets: this.#packets, octets: this.#octets, lastSentMs: this.#lastSentMs }),
      timestampAt: (now) => (this.#format ? this.#timeline.timestampAt(now) : undefined),
      bandwidth: () => (this.#format?.rate ?? 44100) * this.#bpf,
      recipients: () => this.#transport.list().length,
      localAddress: () => this.#transport.localAddress(),
      sendRtcp: (packet) => this.#transport.sendRtcp(packet),
    };
  }

  /**
   * The address the stream leaves from (SDP `o=`, SAP's originating source): the source address the kernel chose
   * for a connected recipient, else this machine's first non-loopback address of the family, else loopback.
   */
  #origin(v6: boolean): string {
    return this.#transport.localAddress() ?? machineAddress(v6 ? 'IPv6' : 'IPv4');
  }

  // =================================================================== commands

  async #addRecipient(m: CommandMessage): Promise<Record<string, unknown>> {
    const dest = parseDestination(m);
    try {
      try {
        await this.#recipients.add(dest);
      } catch (err) {
        // a recipient is in both (the transport's sockets and the thread's) or in neither
        await this.#recipients.remove(dest);
        throw err;
      }
    } catch (err) {
      throw new SpeakerdError('bad-command', `cannot send to ${dest.address}:${dest.port}: ${errorText(err)}`, {
        plugin: PLUGIN,
      });
    }
    this.log.info({ to: `${dest.address}:${dest.port}` }, 'recipient added');
    return { recipients: this.#recipients.list() };
  }

  async #removeRecipient(m: CommandMessage): Promise<Record<string, unknown>> {
    const dest = parseDestination(m);
    if (!(await this.#recipients.remove(dest)))
      throw new SpeakerdError('bad-command', `${dest.address}:${dest.port} is not a recipient`, { plugin: PLUGIN });
    this.log.info({ to: `${dest.address}:${dest.port}` }, 'recipient removed');
    return { recipients: this.#recipients.list() };
  }
}

/** `address` (a host name or IP address) and `port` (1..65534) from a command. */
function parseDestination(m: CommandMessage): Destination {
  const { address, port } = m;
  if (typeof address !== 'string' || address === '' || address.length > 253 || /[\s/]/.test(address))
    throw new SpeakerdError('bad-command', `address: expected a host name or IP address, got ${shown(address)}`, {
      plugin: PLUGIN,
    });
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65534)
    throw new SpeakerdError(
      'bad-command',
      `port: expected an integer 1..65534 (RTCP uses port + 1), got ${shown(port)}`,
      {
        plugin: PLUGIN,
      },
    );
  return { address, port };
}

function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<undefined>((resolve) => {
      t = setTimeout(() => resolve(undefined), ms);
      t.unref?.();
    }),
  ]);
}
