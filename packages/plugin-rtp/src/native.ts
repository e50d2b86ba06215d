import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonProblem, loadAddon, type RealtimeOutcome } from '@speakerd/plugin-sdk';

/**
 * Called by the sender thread (through a ThreadSafeFunction, at most once a second while errors happen, the first at once) with the
 * last error and how many sends failed since the previous call.
 */
export type NativeErrorHandler = (code: string, errno: number, count: number, to: string, message: string) => void;

/**
 * The `code` of the errors the addon's entry points throw on a bad argument (native/args.h): a TypeError for a
 * missing argument or one of the wrong type, a RangeError for one out of range. A closed sender's addRecipient
 * throws an Error with code ECLOSED.
 */
export const NATIVE_ERRORS = {
  argument: 'SPEAKERD_ERR_RTP_ARGUMENT',
  range: 'SPEAKERD_ERR_RTP_RANGE',
} as const;

/** Layout of the Float64Array `stats()` fills. */
export const STAT = {
  queuedPackets: 0,
  queuedFrames: 1,
  queuedHostFrames: 2,
  sentPackets: 3,
  sentOctets: 4,
  lastSentMs: 5,
  freeSlots: 6,
  sendErrors: 7,
  nowMs: 8,
  length: 9,
} as const;

/** Layout of the Float64Array `flush()` fills. */
export const FLUSHED = { packets: 0, frames: 1, hostFrames: 2, marker: 3, length: 4 } as const;

/**
 * Values per packet in the `meta` array given to `enqueue()`: deadline (ms, monotonic), the payload's offset in the
 * ring (-1: that many zero bytes, silence), its length there, the length that continues from the ring's start (it
 * wraps), frames, host frames.
 */
export const META = 6;

/** How a recipient's socket is set up. */
export const DELIVERY = { unicast: 0, multicast: 1, broadcast: 2 } as const;

/** One stream's sender thread and its sockets (native/rtp_sender.cc). */
export interface NativeSender {
  /** (Re)allocate the ring: `slots` packets of at most `slotBytes` bytes. Drops what is queued. */
  configure(slots: number, slotBytes: number): void;
  /** A connected UDP socket to a numeric address; throws an Error with `code` (errno name; ECLOSED after close()). Returns its id. */
  addRecipient(
    address: string,
    port: number,
    delivery: number,
    ttl: number,
    loop: boolean,
    iface: string,
    label: string,
  ): number;
  removeRecipient(id: number): boolean;
  /**
   * Copy packets `first` .. `first + count - 1` into the thread's slots: each one's 12-byte header from `headers`
   * (12 bytes apart) and its payload straight from `ring` as `meta` ({@link META} values a packet) says. Returns
   * how many were taken (fewer only when the ring is full).
   */
  enqueue(ring: Uint8Array, headers: Uint8Array, meta: Float64Array, first: number, count: number): number;
  /** Drop every packet not sent yet; fills `out` ({@link FLUSHED}) and returns the packets dropped. */
  flush(out: Float64Array): number;
  /** Fill `out` ({@link STAT}). */
  stats(out: Float64Array): void;
  /** Stop and join the thread, close the sockets. Idempotent; never blocks longer than one send. */
  close(): void;
  /** How the thread's real-time scheduling went (it set it on itself before the constructor returned). */
  realtime(): RealtimeOutcome;
}

export interface Binding {
  /** `realtime`: the thread asks for SCHED_FIFO priority 20 and 1 ns timer slack on itself. */
  Sender: new (onError: NativeErrorHandler, realtime: boolean) => NativeSender;
  /** CLOCK_MONOTONIC in ms. */
  nowMs(): number;
  /** The addon's interface version ({@link NATIVE_ABI}); an older build has none. */
  abi?: number;
}

/** The interface version of native/rtp_sender.cc this code needs (2: enqueue copies payloads from the JS ring). */
export const NATIVE_ABI = 2;

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Where `node-gyp rebuild` puts the addon. */
export const ADDON_PATH = join(packageDir, 'build', 'Release', 'speakerd_rtp.node');

/** The native sender, or why it is unavailable (`why`, and its halves `problem` and `fix`: SDK loadAddon). */
export type LoadedNative =
  | { binding: Binding; why?: undefined; problem?: undefined; fix?: undefined }
  | { binding?: undefined; why: string; problem: string; fix?: string };

let cached: LoadedNative | undefined;

/** The native sender, or why it is unavailable. */
export function loadNative(): LoadedNative {
  if (cached) return cached;
  const loaded = loadAddon<Binding>({
    packageName: '@speakerd/plugin-rtp',
    path: ADDON_PATH,
    linuxOnly: true,
    // an addon built from an older rtp_sender.cc (a stale build/ directory)
    check: (b) =>
      typeof b.Sender !== 'function' || typeof b.nowMs !== 'function'
        ? 'it does not export Sender and nowMs'
        : typeof b.Sender.prototype.realtime !== 'function'
          ? 'it has no realtime'
          : b.abi !== NATIVE_ABI
            ? `abi ${String(b.abi)}, not ${NATIVE_ABI}`
            : undefined,
  });
  cached = loaded.addon ? { binding: loaded.addon } : addonProblem(loaded.problem, loaded.fix);
  return cached;
}
