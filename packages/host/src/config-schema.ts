import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { intRange, nonEmptyString, numberRange, sampleFormatSchema, z, type SampleFormat } from '@speakerd/plugin-sdk';

/** Longest Unix socket path Linux accepts (sun_path is 108 bytes including the terminating NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** The default decoder socket: `$XDG_RUNTIME_DIR/speakerd/decoders.sock`, else `/tmp/speakerd-<uid>/decoders.sock`. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) return join(runtime, 'speakerd', 'decoders.sock');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return join(tmpdir(), `speakerd-${uid}`, 'decoders.sock');
}

export const DEFAULT_FORMAT: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

/** The host's own keys of speakerrc (PROTOCOL.md section 4). Plugin sections are validated by each plugin. */
export const hostConfigSchema = z.strictObject({
  // for editors only: accepted and dropped, so that `check-config` does not print it
  $schema: z
    .string({ error: (i) => `expected a JSON Schema path or URL, got ${JSON.stringify(i.input)}` })
    .optional()
    .transform(() => undefined)
    .describe(
      'Path or URL of the JSON Schema of speakerrc, for editors (speakerd ships it as ' +
        '@speakerd/host/speakerrc.schema.json; `speakerd schema` prints the one for this configuration). ' +
        'speakerd ignores it.',
    ),
  backend: nonEmptyString('a backend name, package name or path')
    .default('auto')
    .describe(
      'The output backend: "auto" (ALSA if its device opens, else RTP to 127.0.0.1:5004 with an SDP file next ' +
        'to the decoder socket), "alsa", "command", "rtp", a plugin package name, or a path to a plugin ' +
        "(relative to the config file's directory).",
    ),
  plugins: z
    .array(nonEmptyString('a package name or path'), {
      error: (i) => `expected a list of package names or paths, got ${JSON.stringify(i.input)}`,
    })
    .default([])
    .describe(
      "Further plugin packages or paths to load (relative to the config file's directory); their commands " +
        'become available, and each is configured by the section named after it.',
    ),
  socket: nonEmptyString('a socket path')
    .optional()
    .describe(
      "Path of the decoder socket (relative to the config file's directory), at most 107 bytes; default " +
        '$XDG_RUNTIME_DIR/speakerd/decoders.sock, else /tmp/speakerd-<uid>/decoders.sock. A change takes effect ' +
        'when speakerd restarts.',
    ),
  format: sampleFormatSchema
    .default(DEFAULT_FORMAT)
    .describe(
      'The output format every track is converted to, {"encoding", "rate", "channels"}, adjusted to what the ' +
        'backend accepts. A change makes a new backend on reload.',
    ),
  bufferMs: intRange(100, 600_000)
    .default(5000)
    .describe(
      "At most this much audio (ms) is buffered per track, counted in the decoder's own format; speakerd stops " +
        'reading a decoder until there is room.',
    ),
  maxBufferMB: intRange(1, 65_536)
    .default(256)
    .describe(
      "At most this much audio (MB, in the decoders' formats) is buffered across the tracks that wait to play " +
        '(connected, or played behind the next one): beyond it speakerd stops reading their decoders until there ' +
        'is room. The current and the next track are not held back by it (each has its own bufferMs).',
    ),
  unplayedTimeoutMs: intRange(0, 86_400_000)
    .default(3_600_000)
    .describe(
      'A decoder connection whose track is not played within this many ms is dropped (an `error` event with ' +
        'code `not-played` and its id), so that connections nobody plays cannot hold maxTracks for good; 0: never.',
    ),
  earlyFinishMs: intRange(0, 60_000)
    .default(1000)
    .describe(
      "`finished` is sent once the current track's decoder has closed and its end is within this many ms of " +
        'being audible, so that a `play` for the next track sent then is gapless.',
    ),
  reportIntervalMs: intRange(10, 60_000)
    .default(1000)
    .describe('About how often (ms) `playing` and `paused` events report the position of the current track.'),
  headerTimeoutMs: intRange(10, 600_000)
    .default(5000)
    .describe("A decoder connection's header line must be complete within this many ms, or it is dropped."),
  maxTracks: intRange(1, 4096)
    .default(64)
    .describe(
      'At most this many tracks exist at once (connected, or played and waiting); a decoder beyond that is ' +
        'refused with `too-many-tracks`, a `play` is answered `busy`.',
    ),
  volume: numberRange(0, 100)
    .default(100)
    .describe(
      'Volume 0..100: software gain (volume/100)³ on all output; 100 leaves the bytes untouched, 0 is silence. A ' +
        'backend with a hardware mixer (alsa.mixer) takes it instead.',
    ),
});

export type HostConfig = z.infer<typeof hostConfigSchema>;

/** The host keys, for telling them apart from plugin sections. */
export const HOST_KEYS: ReadonlySet<string> = new Set(Object.keys(hostConfigSchema.shape));
