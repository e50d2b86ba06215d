import { randomBytes } from 'node:crypto';
import { isIP, isIPv6 } from 'node:net';
import {
  ErrorCodes,
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
import { FrameRing } from './ring.js';
import { Timeline } from './timeline.js';
import { Recipients } from './recipients.js';
import { errorText } from './errors.js';
import { SendHealth } from './send-health.js';
import { recipientCommands } from './recipient-commands.js';
import { wireOrder, type WireOrder } from './channel-order.js';
import { loadNative } from './native.js';
import type { PacketSender, SenderPath, SenderSession } from './sender.js';
import { JsSender } from './sender-js.js';
import { NATIVE_BATCH_MS, NATIVE_SAFETY_MS, ThreadSender } from './sender-native.js';
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

/** Retry interval for a destination that could not be set up (no route yet, DNS down). */
export const RETRY_MS = 5000;

const PLUGIN = 'rtp';
const NTP_OFFSET_S = 2_208_988_800;

/**
 * Native path: an RTCP report due within this much of a host fill goes out in that wake-up; its own timer (the
 * fallback, when no fill comes: idle, paused) is armed NATIVE_BATCH_MS + NATIVE_SAFETY_MS later than that.
 */
export const NATIVE_RTCP_SHARE_MS = 20;

export type { SenderPath } from './sender.js';

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
 * The session: frames the host writes are copied into a ring (in the wire's byte and channel order); one
 * {@link PacketSender} puts them on the wire at their deadlines — the native thread (sender-native.ts) on the real
 * clock when the addon is built, else JS timers (sender-js.ts) — numbered by the one {@link Timeline}. This class
 * holds the Backend contract, the format, the destination and the wiring of RTCP, SDP/SAP, the lost/ok state
 * (send-health.ts) and the recipient commands (recipient-commands.ts). See the package
 * README for the wire details.
 */
@injectable()
export class RtpBackend implements Backend {
  readonly pacing = 'clock' as const;
  /** How often the host fills on its own: the JS sender wakes it besides; on the native path its fill is the batch. */
  get tickMs(): number {
    return this.#sender.tickMs;
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

  // ------------------------------------------------------------------ the sender (native thread or JS timers)
  readonly #sender: PacketSender;
  /** Why the JS sender is used (undefined on the native path). */
  readonly #nativeWhy: string | undefined;

  #active = false;
  #paused = false;
  #closed = false;

  // ------------------------------------------------------------------ RTCP / SAP
  readonly #rtcp: RtcpReporter;
  /** SDES CNAME: fixed by `cname`, else made once the address the stream leaves from is known. */
  readonly #announcer: Announcer;
  #sessionId: number;

  // ------------------------------------------------------------------ transport and errors
  readonly #transport: Transport;
  /** The recipients, for the transport and the native thread at once. */
  readonly #recipients: Recipients;
  #destination: Destination | undefined;
  #delivery: Delivery = 'unicast';
  #retryTimer: TimerHandle | undefined;
  /** lost/ok as reported to the host, and the send failures' logging (send-health.ts). */
  readonly #health: SendHealth;

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
    this.#health = new SendHealth(log, clock, events, () => this.#closed);
    this.#transport = transportFactory({
      ttl: opts.ttl,
      loop: opts.loop,
      interface: opts.interface,
      onError: (err, dest) => this.#health.sendFailed(err, dest),
      onControlError: (err, dest, what) => this.#health.controlFailed(err, dest, what),
    });
    const session = this.#senderSession();
    let thread: ThreadSender | undefined;
    let why: string | undefined;
    if (!opts.native) why = 'rtp.native is false';
    else if (transportFactory !== udpTransport) why = 'a test transport is in use';
    else if (!isRealClock(clock)) why = 'the clock is not the real monotonic clock';
    else {
      const loaded = loadNative();
      why = loaded.why;
      if (loaded.binding) {
        thread = new ThreadSender(
          session,
          clock,
          log,
          loaded.binding,
          (code, errno, count, to, message) => this.#health.nativeFailed(code, errno, count, to, message),
          opts.realtime !== false,
        );
        reportRealtime(log, opts.realtime, thread.thread.realtime(), 'rtp sender thread');
      }
    }
    this.#nativeWhy = why;
    this.#sender =
      thread ?? new JsSender(session, clock, this.#transport, (err) => this.#health.sendFailed(err, undefined));
    this.#recipients = new Recipients(this.#transport, thread?.thread, opts, () => this.#closed);
    // native: the report goes out with the host's fill once it is due (endFill); its timer fires only when no
    // fill came in time (idle, paused), so streaming costs no wake-up of its own for RTCP
    this.#rtcp = new RtcpReporter(
      clock,
      this.#rtcpSession(),
      thread ? NATIVE_BATCH_MS + NATIVE_SAFETY_MS : 0,
      opts.cname,
    );
    this.commands = recipientCommands(this.#recipients, log);
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
    if (this.#sender.path === 'native')
      this.log.info({ sender: 'native' }, 'rtp sender: native thread (CLOCK_MONOTONIC)');
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
    this.#sender.activate();
    this.#rtcp.start();
    this.#announcer.start();
    if (this.#paused && this.opts.pauseMode === 'silence') {
      this.#sender.start();
      this.#sender.handOver();
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
    if (!this.#sender.running) this.#sender.start();
    return frames;
  }

  /**
   * The host's fill is done. Native path: the fill is the batch: hand the thread every packet that falls due
   * before the next one (silence packets while paused in pauseMode "silence"); frames short of a packet wait for
   * the next fill unless they fall due within NATIVE_SHORT_MS (a timer hands them over then). JS path: nothing to
   * do (its own timer sends each packet at its deadline).
   */
  endFill(): void {
    this.#sender.handOver();
    // native: a report that is due shares this wake-up (its own timer is only the fallback)
    if (this.#sender.path === 'native') this.#rtcp.sendIfDue(NATIVE_RTCP_SHARE_MS);
  }

  /** A query: frames in the ring plus the host frames the native thread still holds (a read of its counters). */
  delay(): number {
    return this.#ring.count + this.#sender.held();
  }

  flush(): number {
    return this.#ring.clear() + this.#sender.flush();
  }

  pause(): void {
    this.#paused = true;
    if (this.opts.pauseMode === 'silence') {
      if (this.#active && !this.#sender.running) this.#sender.start();
      // native: silence from now on (the host has just flushed what the thread held), not only at the next fill
      this.#sender.handOver();
      return;
    }
    this.#sender.stop();
  }

  resume(): void {
    this.#paused = false;
    // silence queued ahead in the thread would delay the music: take it back (never sent, so no gap on the wire)
    if (this.opts.pauseMode === 'silence') this.#sender.flush();
    // the host writes next; a stopped stream restarts then, with the marker bit and the timestamp moved on
  }

  async idle(): Promise<void> {
    this.#active = false;
    this.#ring.clear();
    this.#sender.flush();
    this.#sender.stop();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#active = false;
    this.#sender.close(); // the native sender joins its thread: it waits on a condition variable, so at once
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
    return this.#sender.path === 'native' ? { path: 'native' } : { path: 'js', why: this.#nativeWhy };
  }

  /** Payload bytes copied so far, by copy (FrameRing.copied): `in` + `out` + `thread` is twice what was sent. */
  get copies(): { in: number; out: number; thread: number } {
    return { ...this.#ring.copied };
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
    const capacity = this.#sender.configure({
      framesPerPacket: this.#framesPerPacket,
      bpf: this.#bpf,
      rate: format.rate,
      leadMs: this.opts.leadMs,
    });
    this.#ring.configure(capacity, this.#bpf);
    this.#announcer.describe({
      payload,
      destination: this.#destination ?? { address: this.opts.destination, port: this.opts.port },
      ptimeMs: (this.#framesPerPacket * 1000) / format.rate,
      channelOrder: this.#wire.channelOrder,
    });
  }

  // =================================================================== the destination

  async #connectDestination(): Promise<void> {
    const dest = this.#destination!;
    try {
      await this.#recipients.add(dest, this.#delivery);
      if (this.#health.output.state === 'lost' && this.#retryTimer !== undefined)
        this.#health.output.ok(`sending to ${dest.address}:${dest.port}`);
      this.#retryTimer = undefined;
    } catch (err) {
      this.#health.sendFailed(err as Error, dest);
      this.#retryTimer = this.clock.setTimeout(() => {
        if (!this.#closed) void this.#connectDestination();
      }, RETRY_MS);
    }
  }

  // =================================================================== the sender's view

  /** What the sender reads of this session and tells it (sender.ts). */
  #senderSession(): SenderSession {
    return {
      ring: this.#ring,
      timeline: this.#timeline,
      catchUpMs: this.opts.catchUpMs,
      header: (buf) => this.#timeline.header(buf, this.#payload!.payloadType, this.ssrc),
      silent: () => this.#paused && this.opts.pauseMode === 'silence',
      paused: () => this.#paused,
      sent: (now) => this.#health.sendingWorks(now),
      wake: () => this.events.wake(),
    };
  }

  // =================================================================== RTCP

  /** What RTCP reads of this session: the counts of packets sent, the timeline, the recipients. */
  #rtcpSession(): RtcpSession {
    return {
      ssrc: this.ssrc,
      sent: () => this.#sender.counts(),
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
