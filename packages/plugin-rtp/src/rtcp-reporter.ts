import { hostname, userInfo } from 'node:os';
import type { Clock, TimerHandle } from '@speakerd/plugin-sdk';
import { MAX_CNAME, rtcpIntervalMs, writeBye, writeEmptyRr, writeSdes, writeSr } from './rtcp.js';
import { machineAddress } from './transport.js';

/** What the reporter reads of the session and how it sends. */
export interface RtcpSession {
  readonly ssrc: number;
  /** Packets and payload octets sent, when the last one went (clock ms): up to date (the native thread's are read). */
  sent(): { packets: number; octets: number; lastSentMs: number };
  /** The RTP timestamp (64-bit count) for the clock instant `now`; undefined before a format is configured. */
  timestampAt(now: number): number | undefined;
  /** Session bandwidth in bytes a second (RFC 3550 6.2), and the recipients' count. */
  bandwidth(): number;
  recipients(): number;
  /** The local address the stream leaves from, once a recipient is connected. */
  localAddress(): string | undefined;
  sendRtcp(packet: Buffer): Promise<void>;
}

/**
 * RTCP for one sender (RFC 3550 6): a compound SR (or an empty RR once it stopped sending) + SDES CNAME every
 * randomised interval, + BYE at close. With `fallbackMs` > 0 (the native sender) a due report is sent by the
 * host's next fill (`sendIfDue`) and the timer, armed `fallbackMs` later, fires only when no fill came.
 */
export class RtcpReporter {
  #timer: TimerHandle | undefined;
  #dueAt = Infinity;
  readonly #buf = Buffer.alloc(1024);
  #avgSize = 0;
  #initial = true;
  #lastIntervalMs = 5000;
  #cname: Buffer | undefined;
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly session: RtcpSession,
    private readonly fallbackMs: number,
    cname: string | undefined,
  ) {
    if (cname) this.#cname = cnameBuffer(cname);
  }

  /** Schedule the reports, unless they are scheduled already. */
  start(): void {
    if (this.#timer === undefined && !this.#stopped) this.#schedule();
  }

  /** Send the report now when it falls due within `shareMs` (a wake-up the host makes anyway). */
  sendIfDue(shareMs: number): void {
    if (this.#timer !== undefined && this.clock.now() >= this.#dueAt - shareMs) this.#sendReport();
  }

  /** No more periodic reports. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The last compound packet: the report and a BYE with `reason`. */
  bye(reason: string): Promise<void> {
    const n = this.#build(Buffer.from(reason));
    return this.session.sendRtcp(this.#buf.subarray(0, n));
  }

  /**
   * RFC 3550 6.5.1: `user@host`, the host a fully qualified domain name, or, where the host name has no domain,
   * the numeric address of the interface the stream leaves from. Fixed at the first report a recipient gets.
   */
  #cnameNow(): Buffer {
    if (this.#cname) return this.#cname;
    const host = safeHostname();
    const local = this.session.localAddress();
    const cname = cnameBuffer(`${safeUser()}@${host.includes('.') ? host : (local ?? machineAddress('IPv4'))}`);
    if (local !== undefined || host.includes('.')) this.#cname = cname;
    return cname;
  }

  /** The compound packet in #buf: SR (or an empty RR once we have stopped sending) + SDES, + BYE. */
  #build(bye: Buffer | undefined): number {
    const s = this.session;
    const buf = this.#buf;
    const now = this.clock.now();
    const sent = s.sent();
    let n = 0;
    const weSent = sent.packets > 0 && now - sent.lastSentMs < 2 * this.#lastIntervalMs;
    const rtpTimestamp = weSent ? s.timestampAt(now) : undefined;
    if (rtpTimestamp !== undefined)
      n += writeSr(buf, n, {
        ssrc: s.ssrc,
        wallMs: this.clock.wallNow(),
        rtpTimestamp,
        packets: sent.packets,
        octets: sent.octets,
      });
    else n += writeEmptyRr(buf, n, s.ssrc);
    n += writeSdes(buf, n, s.ssrc, this.#cnameNow());
    if (bye) n += writeBye(buf, n, s.ssrc, bye);
    return n;
  }

  #schedule(): void {
    const s = this.session;
    const ms = rtcpIntervalMs({
      members: 1 + Math.max(0, s.recipients()),
      senders: 1,
      weSent: s.sent().packets > 0,
      sessionBandwidth: s.bandwidth(),
      avgRtcpSize: this.#avgSize || 100,
      initial: this.#initial,
      random: Math.random(),
    });
    this.#lastIntervalMs = ms;
    this.#dueAt = this.clock.now() + ms;
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#stopped) this.#sendReport();
    }, ms + this.fallbackMs);
  }

  /** Send the periodic report now and schedule the next one. */
  #sendReport(): void {
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#initial = false;
    const n = this.#build(undefined);
    // RFC 3550 6.3.3: avg_rtcp_size includes the UDP and IP headers
    const size = n + 28;
    this.#avgSize = this.#avgSize === 0 ? size : size / 16 + (15 / 16) * this.#avgSize;
    void this.session.sendRtcp(this.#buf.subarray(0, n));
    this.#schedule();
  }
}

function cnameBuffer(cname: string): Buffer {
  while (Buffer.byteLength(cname) > MAX_CNAME) cname = cname.slice(0, -1);
  return Buffer.from(cname);
}

/** The user speakerd runs as, for the CNAME (RFC 3550 omits it where there is none). */
function safeUser(): string {
  try {
    return userInfo().username || 'speakerd';
  } catch {
    return 'speakerd';
  }
}

function safeHostname(): string {
  try {
    return hostname() || 'localhost';
  } catch {
    return 'localhost';
  }
}
