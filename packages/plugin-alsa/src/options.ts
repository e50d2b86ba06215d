import { intRange, nonEmptyString, oneOf, realtimeMode, z } from '@speakerd/plugin-sdk';

const mixer = z.union(
  [
    z.null(),
    nonEmptyString('a mixer control name'),
    z.strictObject({
      control: nonEmptyString('a mixer control name').describe('Simple mixer control name, e.g. "Master".'),
      index: intRange(0, 255).default(0).describe('Index of the control, for cards with several of that name.'),
    }),
  ],
  { error: (i) => `expected null, a control name or {control, index}, got ${JSON.stringify(i.input)}` },
);

/** The `alsa` section of speakerrc. */
export const options = z
  .strictObject({
    /** ALSA PCM name. */
    device: nonEmptyString('an ALSA PCM name')
      .default('default')
      .describe('ALSA PCM name: "default", "hw:0,0", "plughw:CARD=DAC", "dmix", or any PCM defined in asound.conf.'),
    /** Hardware buffer length in ms. */
    bufferMs: intRange(5, 5000).default(100).describe('Hardware buffer length asked of the device, in ms.'),
    /** Period length in ms. */
    periodMs: intRange(1, 1000).default(20).describe('Period length asked of the device, in ms.'),
    /** `fixed`: one output format, gapless; `auto`: each track in its own format (bit-perfect, reopens). */
    format: oneOf(['fixed', 'auto'] as const)
      .default('fixed')
      .describe(
        '"fixed": every track is converted to the one output format, gapless; "auto": each track plays in its own ' +
          'format (bit-perfect), reopening the device where the format changes.',
      ),
    /** Hardware mixer control for the volume command, or null for software volume. */
    mixer: mixer
      .default(null)
      .describe(
        'Hardware mixer control for the volume command: a control name ("PCM") or {"control", "index"}; null: ' +
          'the host scales the samples instead.',
      ),
    /**
     * Real-time scheduling of the writer thread: SCHED_FIFO priority 20 and 1 ns timer slack, asked of the kernel
     * by the thread itself (root, CAP_SYS_NICE or an rtprio limit of 20 needed; rtkit is not used).
     */
    realtime: realtimeMode()
      .default('auto')
      .describe(
        'Real-time scheduling of the writer thread (SCHED_FIFO priority 20, 1 ns timer slack), asked of the kernel ' +
          'directly: it needs root, CAP_SYS_NICE or an rtprio limit of 20 (rtkit is not used). "auto": try, and log ' +
          'one info line when not permitted; true: try, and warn when not permitted; false: leave the scheduling ' +
          'alone. Playback goes on at normal priority either way.',
      ),
  })
  .prefault({})
  .describe('The section of the built-in alsa backend: a sound card through libasound.');

export type AlsaOptions = z.infer<typeof options>;
