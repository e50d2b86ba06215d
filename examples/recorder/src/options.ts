import { intRange, nonEmptyString, oneOf, z } from '@speakerd/plugin-sdk';

/** The `recorder` section of speakerrc. `{}` is valid: every key has a default. */
export const recorderOptions = z
  .strictObject({
    /** Where the WAV files go (relative to the config file's directory). */
    dir: nonEmptyString('a directory').default('recordings'),
    /** The start of each file's name; the rest is the UTC time the recording started (`20261202T013800Z.wav`). */
    prefix: z
      .string({ error: (i) => `expected a file name prefix, got ${JSON.stringify(i.input)}` })
      .regex(/^[^/\\\0]*$/, { error: 'expected a file name prefix without "/"' })
      .default('speakerd-'),
    /** `realtime`: as a listener hears it (positions, `finished`); `fast`: as fast as the tracks come. */
    pace: oneOf(['realtime', 'fast']).default('realtime'),
    /** How far ahead of real time the host may write (pace `realtime`). */
    leadMs: intRange(0, 1000).default(20),
  })
  .prefault({});

export type RecorderOptions = z.infer<typeof recorderOptions>;
