import { bool, intRange, nonEmptyString, numberRange, oneOf, realtimeMode, z } from '@speakerd/plugin-sdk';

const payloadType = z.union([intRange(96, 127), z.null()], {
  error: (i) => `expected null or an integer 96..127, got ${JSON.stringify(i.input)}`,
});

const fields = {
  /** Host name or IPv4/IPv6 address to send to. */
  destination: nonEmptyString('a host name or IP address')
    .default('127.0.0.1')
    .describe(
      'Host name or IPv4/IPv6 address to send to (multicast and broadcast addresses are set up as such); the ' +
        'first recipient unless mode is "request".',
    ),
  /** UDP port for RTP (RTCP uses port + 1); even by convention. */
  port: intRange(1, 65535)
    .refine((p) => p < 65535, { error: 'expected a port below 65535 (RTCP uses port + 1)' })
    // the refinement, for the JSON Schema (a refine function has no JSON Schema of its own)
    .meta({ maximum: 65534 })
    .default(5004)
    .describe('UDP port for RTP (RTCP uses port + 1), 1..65534; even by convention.'),
  /** `auto` picks multicast/broadcast/unicast from the address; `request` sends only to runtime recipients. */
  mode: oneOf(['auto', 'unicast', 'multicast', 'broadcast', 'request'] as const)
    .default('auto')
    .describe(
      '"auto" picks multicast for a multicast address, broadcast for a broadcast address, unicast otherwise; ' +
        '"request" sends only to recipients added at run time (rtp.add-recipient).',
    ),
  /** Where to write the SDP file (relative to the config file); omit to write none. */
  sdp: nonEmptyString('a file path')
    .optional()
    .describe('Where to write the SDP file describing the stream (relative to the config file); omit to write none.'),
  /** Multicast TTL / IPv6 hop limit. */
  ttl: intRange(0, 255).default(1).describe('Multicast TTL / IPv6 hop limit.'),
  /** Multicast loopback. */
  loop: bool().default(true).describe('Multicast loopback: receivers on this machine hear the stream too.'),
  /** Interface address for multicast. */
  interface: nonEmptyString('an interface address')
    .optional()
    .describe('Address of the interface to send multicast from.'),
  /** Largest IP packet to send. */
  mtu: intRange(128, 65_535).default(1500).describe('Largest IP packet to send, in bytes.'),
  /**
   * Packet duration bounds. A packet holds as many frames as fit `mtu`, then at most `maxPtimeMs` (RFC 3551 4.2:
   * 20 ms is the default packet time of audio) and at least `minPtimeMs` of audio (1 ms: at most 1,000 packets a
   * second; the minimum wins over the MTU, and such a packet leaves in IP fragments). README, "Packet size".
   */
  minPtimeMs: numberRange(0, 1000)
    .default(1)
    .describe(
      'Shortest packet, in ms of audio (0..1000). It wins over mtu: a packet the MTU cannot hold is sent in IP ' +
        'fragments (PipeWire clamps the same way). Default 1: at most 1,000 packets a second.',
    ),
  maxPtimeMs: numberRange(0, 1000)
    .default(20)
    .describe(
      'Longest packet, in ms of audio (0..1000), at least minPtimeMs. Default 20: the default packet time of ' +
        'RFC 3551 section 4.2 (receivers should accept 0 to 200 ms).',
    ),
  /** Dynamic payload type for formats without a static one (null: 96). */
  payloadType: payloadType
    .default(null)
    .describe('Dynamic payload type (96..127) for formats without a static one; null: 96.'),
  /** How far ahead of real time packets may be queued, in ms. */
  leadMs: intRange(0, 1000).default(20).describe('How far ahead of real time packets may be queued, in ms.'),
  /** While paused: stop sending, or send silence to keep receivers locked. */
  pauseMode: oneOf(['stop', 'silence'] as const)
    .default('stop')
    .describe('While paused: "stop" sending, or send "silence" to keep receivers locked.'),
  /** DisOrder playrtp compatibility: count timestamps in samples instead of frames. */
  timestampsInSamples: bool()
    .default(false)
    .describe('DisOrder playrtp compatibility: count RTP timestamps in samples instead of frames.'),
  /**
   * More than 2 channels (README, "Channel order"): "wav" sends the host's (WAVE) order and announces the RFC 3190
   * channel-order that has it (4: DV.LRLsRs, 6: DV.LmixRmixTWoQ1Q2); "gstreamer-1.22" announces what GStreamer
   * 1.22's inverted channel-order lookup plays in the host's order (5 and 6 channels, and 8 reordered side before
   * rear), for receivers on GStreamer 1.22 and earlier.
   */
  channelOrder: oneOf(['wav', 'gstreamer-1.22'] as const)
    .default('wav')
    .describe(
      'More than 2 channels: "wav" sends the host\'s WAVE order (FL FR FC LFE BL BR for 6) and announces the RFC 3190 ' +
        'channel-order that names it (4 and 6 channels); "gstreamer-1.22" announces the orders GStreamer 1.22, ' +
        "whose channel-order lookup is inverted, plays in the host's order (5, 6, and 8 channels sent side pair " +
        'before rear pair).',
    ),
  /** Send SAP announcements (RFC 2974) for PipeWire/PulseAudio discovery. */
  sap: bool().default(false).describe('Send SAP announcements (RFC 2974) for PipeWire/PulseAudio discovery.'),
  /**
   * Where SAP announcements go: 224.0.0.56, where PipeWire (module-rtp-sap) and PulseAudio (module-rtp-recv)
   * listen; VLC's SAP discovery listens on 224.2.127.254, 239.195.255.255, 239.255.255.255 and 224.0.0.255.
   */
  sapAddress: nonEmptyString('an IP address')
    .default('224.0.0.56')
    .describe(
      'Where SAP announcements go (an IPv4 or IPv6 address, multicast or not). 224.0.0.56: where PipeWire and ' +
        "PulseAudio listen by default; VLC's SAP discovery listens on 239.255.255.255 (or 224.2.127.254, " +
        '239.195.255.255, 224.0.0.255) instead.',
    ),
  /** SAP port. */
  sapPort: intRange(1, 65535)
    .default(9875)
    .describe('UDP port of SAP announcements (9875, RFC 2974; PipeWire, PulseAudio and VLC listen there).'),
  /** Seconds between SAP announcements. */
  sapIntervalS: intRange(1, 3600).default(5).describe('Seconds between SAP announcements.'),
  /** RTCP canonical name (SDES CNAME); default `user@host` as RFC 3550 6.5.1 gives it. */
  cname: nonEmptyString('a canonical name')
    .optional()
    .describe(
      'RTCP canonical name (SDES CNAME); default <user>@<host>: the host name if it is fully qualified, else the address the stream leaves from (RFC 3550 6.5.1).',
    ),
  /**
   * A stall of the process shorter than this is caught up by sending the overdue packets at once; after a longer
   * one (a suspended machine, a clock jump) the schedule and the RTP timestamps move forward instead of bursting.
   */
  catchUpMs: intRange(0, 10_000)
    .default(100)
    .describe(
      'A stall shorter than this (ms) is caught up by sending the overdue packets at once; after a longer one the ' +
        'schedule and the RTP timestamps move forward instead.',
    ),
  /**
   * Send from the native sender thread (packets handed over in batches, each sent at its deadline by a thread
   * sleeping on CLOCK_MONOTONIC) when the addon is built and the clock is the real one; false forces the
   * JavaScript sender (one timer per packet).
   */
  native: bool()
    .default(true)
    .describe(
      'Send from the native sender thread (each packet at its deadline) when the addon is built; false forces the ' +
        'JavaScript sender.',
    ),
  /**
   * Real-time scheduling of the native sender thread: SCHED_FIFO priority 20 and 1 ns timer slack, asked of the
   * kernel by the thread itself (root, CAP_SYS_NICE or an rtprio limit of 20 needed; rtkit is not used).
   */
  realtime: realtimeMode()
    .default('auto')
    .describe(
      'Real-time scheduling of the native sender thread (SCHED_FIFO priority 20, 1 ns timer slack), asked of the ' +
        'kernel directly: it needs root, CAP_SYS_NICE or an rtprio limit of 20 (rtkit is not used). "auto": try, ' +
        'and log one info line when not permitted; true: try, and warn when not permitted; false: leave the ' +
        'scheduling alone. Playback goes on at normal priority either way; the JavaScript sender is not affected.',
    ),
};

/** The `rtp` section of speakerrc. */
export const options = z
  .strictObject(fields)
  .prefault({})
  .describe('The section of the built-in rtp backend: RTP/UDP (RFC 3550/3551) with SDP and RTCP.');

export type RtpOptions = z.infer<typeof options>;
