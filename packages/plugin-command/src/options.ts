import { bool, intRange, nonEmptyString, oneOf, z } from '@speakerd/plugin-sdk';

/** The `command` section of speakerrc. */
export const options = z
  .strictObject({
    /** Shell command (run with `sh -c`) that reads raw PCM in the output format on its stdin. */
    run: nonEmptyString('a shell command').default('aplay -q -t raw -f cd -'),
    /** `suspend`: stop writing while paused; `silence`: keep writing silence so the reader stays in step. */
    pauseMode: oneOf(['silence', 'suspend'] as const).default('suspend'),
    /** How far ahead of real time PCM is written, in ms (pause takes effect within this). */
    leadMs: intRange(0, 10_000).default(20),
    /** DisOrder's original mode: write as fast as the pipe accepts instead of at real time. */
    unpaced: bool().default(false),
    /** Restart back-off after the command exits: first delay and ceiling, in ms. */
    restartMinMs: intRange(10, 60_000).default(100),
    restartMaxMs: intRange(10, 600_000).default(10_000),
  })
  .prefault({});

export type CommandOptions = z.infer<typeof options>;
