import { isIP, isIPv6 } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { ErrorCodes, SpeakerdError, writeFileAtomic, type Clock, type TimerHandle } from '@speakerd/plugin-sdk';
import { errorText } from './errors.js';
import type { RtpOptions } from './options.js';
import type { Payload } from './payload.js';
import { buildSap } from './sap.js';
import { buildSdp } from './sdp.js';
import { isMulticast, type Destination } from './transport.js';

/** What the announcer needs of the session: where it sends from and how it sends a datagram. */
export interface AnnounceLink {
  /** The address the stream leaves from, for SDP `o=` and SAP's originating source. */
  origin(v6: boolean): string;
  sendTo(packet: Buffer, to: Destination): Promise<void>;
}

/** What is sent, for the SDP's media lines. */
export interface AnnouncedStream {
  payload: Payload;
  /** Where the stream goes (the `c=` and `m=` lines); a host name is announced as 127.0.0.1. */
  destination: Destination;
  ptimeMs: number;
  channelOrder: string | undefined;
}

type AnnounceOptions = Pick<RtpOptions, 'sdp' | 'ttl' | 'sap' | 'sapAddress' | 'sapPort' | 'sapIntervalS'>;

/**
 * The stream's announcement: the SDP (RFC 4566) text, written to `rtp.sdp` when the format is configured, and SAP
 * (RFC 2974) announcements of it every `sapIntervalS` while active, with a deletion at close.
 */
export class Announcer {
  #sdp: string | undefined;
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(
    private readonly opts: AnnounceOptions,
    private readonly clock: Clock,
    private readonly configDir: string,
    /** The SDP session id and version, and SAP's message id hash (its low 16 bits). */
    private readonly sessionId: number,
    private readonly link: AnnounceLink,
  ) {}

  /** The SDP text describing the stream (undefined before the first format). */
  get sdp(): string | undefined {
    return this.#sdp;
  }

  /** Build the SDP for `stream` and write it to `rtp.sdp` (atomically) when that is set. */
  describe(stream: AnnouncedStream): void {
    const dest = stream.destination;
    const address = isIP(dest.address) ? dest.address : '127.0.0.1';
    this.#sdp = buildSdp({
      payload: stream.payload,
      destination: address,
      port: dest.port,
      ttl: this.opts.ttl,
      multicast: isMulticast(address),
      origin: this.link.origin(isIPv6(address)),
      sessionId: this.sessionId,
      version: this.sessionId,
      ptimeMs: stream.ptimeMs,
      channelOrder: stream.channelOrder,
    });
    if (!this.opts.sdp) return;
    const file = resolvePath(this.configDir, this.opts.sdp);
    try {
      // a new file with a random name, created exclusively (never through a symlink), renamed into place
      writeFileAtomic(file, this.#sdp);
    } catch (err) {
      throw new SpeakerdError(ErrorCodes.CONFIG, `rtp.sdp: cannot write ${file}: ${errorText(err)}`, {
        plugin: 'rtp',
        cause: err,
      });
    }
  }

  /** Start the SAP announcements (with `rtp.sap`), unless they run already. */
  start(): void {
    if (this.opts.sap && this.#timer === undefined && !this.#stopped) this.#announce();
  }

  /** Stop the announcements (for good: a later start() does nothing). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The SAP deletion (with `rtp.sap`, once there is an SDP); resolved at once when there is none to send. */
  withdraw(): Promise<void> {
    return this.opts.sap ? this.#send(true) : Promise.resolve();
  }

  #announce(): void {
    void this.#send(false);
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#stopped) this.#announce();
    }, this.opts.sapIntervalS * 1000);
  }

  #send(deletion: boolean): Promise<void> {
    if (!this.#sdp) return Promise.resolve();
    const origin = this.link.origin(isIPv6(this.opts.sapAddress));
    const packet = buildSap({ sdp: this.#sdp, origin, msgIdHash: this.sessionId & 0xffff, deletion });
    return this.link.sendTo(packet, { address: this.opts.sapAddress, port: this.opts.sapPort });
  }
}
