import { bool, intRange, nonEmptyString, oneOf, z } from '@speakerd/plugin-sdk';

/** snapserver's defaults (snapserver -hh, 0.26): tcp source port, control port, buffer, chunk, sample format. */
export const SNAPSERVER_DEFAULTS = {
  tcpSourcePort: 4953,
  controlPort: 1705,
  bufferMs: 1000,
  chunkMs: 20,
  sampleFormat: '48000:16:2',
} as const;

const SAMPLE_FORMAT_RE = /^\d+:\d+:\d+$/;

/** The JSON-RPC control connection (snapserver's `[tcp]` section). */
const controlOptions = z
  .strictObject({
    enabled: bool()
      .default(true)
      .describe(
        "Ask snapserver's JSON-RPC control port for the stream's settings (sample format, chunk size, source type) " +
          'at start-up and after each reconnection. Best effort: an unreachable control port is logged, never fatal.',
      ),
    host: nonEmptyString('a host name or address')
      .default('127.0.0.1')
      .describe("Where snapserver's JSON-RPC control port listens ([tcp] bind_to_address)."),
    port: intRange(1, 65535).default(SNAPSERVER_DEFAULTS.controlPort).describe("snapserver's [tcp] port."),
    timeoutMs: intRange(50, 30_000)
      .default(1000)
      .describe('How long one JSON-RPC request may take before it is given up (start-up waits at most this).'),
  })
  .prefault({})
  .describe("snapserver's JSON-RPC control port (TCP, line-delimited JSON).");

/** The `snapcast` section of speakerrc. Every key has a default, so `{}` (or no section at all) validates. */
export const options = z
  .strictObject({
    source: oneOf(['tcp', 'pipe'] as const)
      .default('tcp')
      .describe('The kind of snapserver source speakerd feeds: a "tcp" source or a "pipe" source (a fifo).'),
    mode: oneOf(['connect', 'listen'] as const)
      .default('connect')
      .describe(
        'tcp only. "connect": snapserver listens (source tcp://HOST:PORT?mode=server) and speakerd connects to ' +
          'it; "listen": speakerd listens on HOST:PORT and snapserver connects (source tcp://HOST:PORT?mode=client).',
      ),
    host: nonEmptyString('a host name or address')
      .default('127.0.0.1')
      .describe('tcp only: the address snapserver listens on ("connect") or speakerd listens on ("listen").'),
    port: intRange(1, 65535)
      .default(SNAPSERVER_DEFAULTS.tcpSourcePort)
      .describe("tcp only: the source's port (snapserver's default for tcp sources is 4953)."),
    pipe: nonEmptyString('a path')
      .default('/tmp/snapfifo')
      .describe("pipe only: the fifo snapserver reads (relative to the config file's directory)."),
    stream: nonEmptyString('a stream name')
      .default('default')
      .describe('The name= of the source in snapserver.conf, as the JSON-RPC control port knows the stream.'),
    sampleFormat: z
      .string({ error: (i) => `expected RATE:BITS:CHANNELS such as "48000:16:2", got ${JSON.stringify(i.input)}` })
      .regex(SAMPLE_FORMAT_RE, {
        error: (i) => `expected RATE:BITS:CHANNELS such as "48000:16:2", got ${JSON.stringify(i.input)}`,
      })
      .optional()
      .describe(
        "The stream's sampleformat as snapserver writes it (RATE:BITS:CHANNELS). Unset: taken from the stream's " +
          "settings over JSON-RPC, else snapserver's default 48000:16:2. Set: checked against the stream's settings " +
          '(a mismatch stops start-up with SPEAKERD_ERR_SNAPCAST_FORMAT).',
      ),
    chunkMs: intRange(1, 1000)
      .optional()
      .describe(
        "The stream's chunk_ms. Unset: taken from the stream's settings, else snapserver's default 20. speakerd " +
          'only ever writes whole chunks.',
      ),
    bufferMs: intRange(0, 60_000)
      .default(SNAPSERVER_DEFAULTS.bufferMs)
      .describe(
        "snapserver's [stream] buffer in ms (default 1000): how long after speakerd writes a frame the rooms play " +
          "it. Counted in delay(), so speakerd's positions and finished events are what the rooms hear.",
      ),
    leadMs: intRange(0, 2000)
      .default(250)
      .describe(
        'How far ahead of real time speakerd writes into the stream, in ms (one chunk is added). snapserver ' +
          'resyncs the stream when its input comes late, so this is what a busy speakerd may lag without a glitch; ' +
          'a pause reaches the rooms this much (plus the buffer) later.',
      ),
    idleSilenceMs: intRange(0, 86_400_000)
      .default(10_000)
      .describe(
        'How long silence is sent after playback goes idle before the stream is left to go idle in snapserver, ' +
          'in ms (while paused, silence is sent for as long as the pause lasts).',
      ),
    reconnectMinMs: intRange(10, 60_000)
      .default(100)
      .describe('First delay before reconnecting (or reopening the fifo) after the stream is lost, in ms.'),
    reconnectMaxMs: intRange(10, 600_000)
      .default(10_000)
      .describe('Ceiling of the doubling reconnection delay, in ms; not less than reconnectMinMs.'),
    stallMs: intRange(100, 60_000)
      .default(2000)
      .describe('How long snapserver may stop reading before the connection is dropped and made again, in ms.'),
    control: controlOptions,
  })
  .superRefine((value, ctx) => {
    if (value.reconnectMinMs > value.reconnectMaxMs)
      ctx.addIssue({
        code: 'custom',
        path: ['reconnectMaxMs'],
        message: `must not be less than reconnectMinMs (${value.reconnectMinMs}), got ${value.reconnectMaxMs}`,
      });
  })
  .prefault({})
  .describe(
    "The section of the built-in snapcast backend: feeds a snapserver stream (tcp or pipe source) in the stream's " +
      'format, in whole chunks, with silence while paused or idle.',
  );

/** The validated `snapcast` section, defaults applied. */
export type SnapcastOptions = z.infer<typeof options>;
