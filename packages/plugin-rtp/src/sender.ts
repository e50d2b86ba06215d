import type { FrameRing } from './ring.js';
import type { Timeline } from './timeline.js';

/** Which sender a backend uses: the native thread, or JS timers on the injected clock. */
export type SenderPath = 'native' | 'js';

/** The host is asked to top up the ring once this many packets' worth of room is free (fewer host fills). */
export const FILL_PACKETS = 4;

/** A packet's shape for the agreed format. */
export interface PacketShape {
  /** Frames in a full packet. */
  readonly framesPerPacket: number;
  /** Bytes a frame on the wire. */
  readonly bpf: number;
  readonly rate: number;
  /** `rtp.leadMs`: how far ahead of real time packets may be queued. */
  readonly leadMs: number;
}

/** What a sender reads of the session it sends for, and what it tells it. */
export interface SenderSession {
  /** The frames the host wrote, not yet sent (the senders take packets from its head). */
  readonly ring: FrameRing;
  /** Sequence number, timestamp, marker and deadlines: the one catch-up and marker rule. */
  readonly timeline: Timeline;
  /** `rtp.catchUpMs`. */
  readonly catchUpMs: number;
  /** Write the next packet's 12-byte RTP header into `buf` (the timeline's numbers, the payload type, the SSRC). */
  header(buf: Buffer): void;
  /** Paused with `pauseMode: "silence"`: silence packets go out while the ring is empty. */
  silent(): boolean;
  /** Paused (either mode): the host is not asked for frames. */
  paused(): boolean;
  /** A packet went out (or the thread says it did) at `now`: the session's lost/ok state may recover. */
  sent(now: number): void;
  /** Ask the host to top up the ring (it runs in a microtask: no wake-up of its own). */
  wake(): void;
}

/** RTCP's view of what was sent (RFC 3550 6.4.1: the sender's packet and octet counts). */
export interface SentCounts {
  packets: number;
  octets: number;
  /** When the last packet went out, on the injected clock (-Infinity before the first). */
  lastSentMs: number;
}

/**
 * A way of putting the session's packets on the wire at their deadlines: {@link JsSender} (a timer on the injected
 * clock, any transport) or {@link ThreadSender} (a thread on CLOCK_MONOTONIC with its own sockets). Both take
 * packets from the session's ring, number them through its timeline, and tell it when they stop for want of
 * frames; the backend neither knows nor cares which one runs, apart from how often the host fills (`tickMs`).
 */
export interface PacketSender {
  readonly path: SenderPath;
  /** How often the host fills on its own (the JS sender wakes it every FILL_PACKETS packets besides). */
  readonly tickMs: number;
  /** Sending (started, not stopped, not dry). */
  readonly running: boolean;
  /** The format is agreed: size the sender's own buffers; returns the ring capacity (frames) it needs. */
  configure(shape: PacketShape): number;
  /** A stream begins (activate): forget what an earlier one left queued. */
  activate(): void;
  /**
   * Start sending: after activate, a pause, or a dry spell (Timeline.restart decides whether it is a new
   * talkspurt). Anchored now (JS) or at the next hand-over (native).
   */
  start(): void;
  /** Stop sending (pause in "stop" mode, idle, close). */
  stop(): void;
  /** The host's fill is done: the native sender hands the thread what falls due before the next fill. */
  handOver(): void;
  /** Frames of the host's the sender holds beyond the ring (queued for the thread, not yet sent). */
  held(): number;
  /** Take back what is queued and not sent (the timeline goes back by it); returns the host frames among it. */
  flush(): number;
  /** What was sent, for RTCP. */
  counts(): SentCounts;
  /** Stop for good (the native sender joins its thread). */
  close(): void;
}
