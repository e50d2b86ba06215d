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
  backend: nonEmptyString('a backend name, package name or path').default('alsa'),
  plugins: z
    .array(nonEmptyString('a package name or path'), {
      error: (i) => `expected a list of package names or paths, got ${JSON.stringify(i.input)}`,
    })
    .default([]),
  socket: nonEmptyString('a socket path').optional(),
  format: sampleFormatSchema.default(DEFAULT_FORMAT),
  bufferMs: intRange(100, 600_000).default(5000),
  earlyFinishMs: intRange(0, 60_000).default(1000),
  reportIntervalMs: intRange(10, 60_000).default(1000),
  headerTimeoutMs: intRange(10, 600_000).default(5000),
  maxTracks: intRange(1, 4096).default(64),
  volume: numberRange(0, 100).default(100),
});

export type HostConfig = z.infer<typeof hostConfigSchema>;

/** The host keys, for telling them apart from plugin sections. */
export const HOST_KEYS: ReadonlySet<string> = new Set(Object.keys(hostConfigSchema.shape));
