import { bool, intRange, nonEmptyString, oneOf, z } from '@speakerd/plugin-sdk';

const payloadType = z.union([intRange(96, 127), z.null()], {
  error: (i) => `expected null or an integer 96..127, got ${JSON.stringify(i.input)}`,
});

const fields = {
  /** Host name or IPv4/IPv6 address to send to. */
  destination: nonEmptyString('a host name or IP address').default('127.0.0.1'),
  /** UDP port for RTP (RTCP uses port + 1); even by convention. */
  port: intRange(1, 65535)
    .refine((p) => p < 65535, { error: 'expected a port below 65535 (RTCP uses port + 1)' })
    .default(5004),
  /** `auto` picks multicast/broadcast/unicast from the address; `request` sends only to runtime recipients. */
  mode: oneOf(['auto', 'unicast', 'multicast', 'broadcast', 'request'] as const).default('auto'),
  /** Where to write the SDP file (relative to the config file); omit to write none. */
  sdp: nonEmptyString('a file path').optional(),
  /** Multicast TTL / IPv6 hop limit. */
  ttl: intRange(0, 255).default(1),
  /** Multicast loopback. */
  loop: bool().default(true),
  /** Interface address for multicast. */
  interface: nonEmptyString('an interface address').optional(),
  /** Largest IP packet to send. */
  mtu: intRange(128, 65_535).default(1500),
  /** Dynamic payload type for formats without a static one (null: 96). */
  payloadType: payloadType.default(null),
  /** How far ahead of real time packets may be queued, in ms. */
  leadMs: intRange(0, 1000).default(20),
  /** While paused: stop sending, or send silence to keep receivers locked. */
  pauseMode: oneOf(['stop', 'silence'] as const).default('stop'),
  /** DisOrder playrtp compatibility: count timestamps in samples instead of frames. */
  timestampsInSamples: bool().default(false),
  /** Send SAP announcements (RFC 2974) for PipeWire/PulseAudio discovery. */
  sap: bool().default(false),
  /** Where SAP announcements go (PulseAudio's and PipeWire's default group). */
  sapAddress: nonEmptyString('an IP address').default('224.0.0.56'),
  /** SAP port. */
  sapPort: intRange(1, 65535).default(9875),
  /** Seconds between SAP announcements. */
  sapIntervalS: intRange(1, 3600).default(5),
  /** RTCP canonical name (SDES CNAME); default `speakerd@<host name>`. */
  cname: nonEmptyString('a canonical name').optional(),
  /**
   * A stall of the process shorter than this is caught up by sending the overdue packets at once; after a longer
   * one (a suspended machine, a clock jump) the schedule and the RTP timestamps move forward instead of bursting.
   */
  catchUpMs: intRange(0, 10_000).default(100),
  /**
   * Send from the native sender thread (packets handed over in batches, each sent at its deadline by a thread
   * sleeping on CLOCK_MONOTONIC) when the addon is built and the clock is the real one; false forces the
   * JavaScript sender (one timer per packet).
   */
  native: bool().default(true),
};

/** The `rtp` section of speakerrc. */
export const options = z.strictObject(fields).prefault({});

export type RtpOptions = z.infer<typeof options>;
