import { intRange, nonEmptyString, oneOf, z } from '@speakerd/plugin-sdk';

const mixer = z.union(
  [
    z.null(),
    nonEmptyString('a mixer control name'),
    z.strictObject({ control: nonEmptyString('a mixer control name'), index: intRange(0, 255).default(0) }),
  ],
  { error: (i) => `expected null, a control name or {control, index}, got ${JSON.stringify(i.input)}` },
);

/** The `alsa` section of speakerrc. */
export const options = z
  .strictObject({
    /** ALSA PCM name. */
    device: nonEmptyString('an ALSA PCM name').default('default'),
    /** Hardware buffer length in ms. */
    bufferMs: intRange(5, 5000).default(100),
    /** Period length in ms. */
    periodMs: intRange(1, 1000).default(20),
    /** `fixed`: one output format, gapless; `auto`: each track in its own format (bit-perfect, reopens). */
    format: oneOf(['fixed', 'auto'] as const).default('fixed'),
    /** Hardware mixer control for the volume command, or null for software volume. */
    mixer: mixer.default(null),
  })
  .prefault({});

export type AlsaOptions = z.infer<typeof options>;
