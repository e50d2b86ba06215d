import { bool, intRange, nonEmptyString, oneOf, z } from '@speakerd/plugin-sdk';

/** The `command` section of speakerrc. Every key has a default, so `{}` (or no section at all) validates. */
export const options = z
  .strictObject({
    /** Shell command (run with `sh -c`) that reads raw PCM in the output format on its stdin. */
    run: nonEmptyString('a shell command')
      .default('aplay -q -t raw -f cd -')
      .describe('Shell command (run with sh -c) that reads raw interleaved PCM in the output format on its stdin.'),
    /** `suspend`: stop writing while paused; `silence`: keep writing silence so the reader stays in step. */
    pauseMode: oneOf(['silence', 'suspend'] as const)
      .default('suspend')
      .describe(
        '"suspend": nothing is written while paused; "silence": silence is written at real time while paused, so ' +
          'a reader that needs a steady stream stays in step.',
      ),
    /** How far ahead of real time PCM is written, in ms (pause takes effect within this). */
    leadMs: intRange(0, 10_000)
      .default(20)
      .describe('How far ahead of real time PCM is written, in ms; a pause takes effect within this.'),
    /** DisOrder's original mode: write as fast as the pipe accepts instead of at real time. */
    unpaced: bool()
      .default(false)
      .describe(
        "DisOrder's original mode: write as fast as the command reads instead of at real time (for commands " +
          'that pace themselves).',
      ),
    /** Restart back-off after the command exits: first delay and ceiling, in ms. */
    restartMinMs: intRange(10, 60_000)
      .default(100)
      .describe('First restart delay after the command exits or fails, in ms.'),
    restartMaxMs: intRange(10, 600_000)
      .default(10_000)
      .describe('Ceiling of the doubling restart delay, in ms; not less than restartMinMs.'),
    /**
     * Keep the command running while nothing plays (DisOrder's behaviour) instead of ending it when the host goes
     * idle. It gets no data while idle.
     */
    keepRunning: bool()
      .default(false)
      .describe(
        "Keep the command running while nothing plays (DisOrder's behaviour) instead of ending it when speakerd " +
          'goes idle; it gets no data while idle.',
      ),
    /**
     * How long stopping the command waits at each step: after its stdin is closed for it to exit, then after
     * SIGTERM, then after SIGKILL (in ms). Stopping therefore never takes longer than three times this.
     */
    stopTimeoutMs: intRange(10, 60_000)
      .default(2000)
      .describe(
        'How long stopping the command waits at each step, in ms: for it to exit after its stdin is closed, then ' +
          'after SIGTERM, then after SIGKILL.',
      ),
  })
  .superRefine((value, ctx) => {
    if (value.restartMinMs > value.restartMaxMs)
      ctx.addIssue({
        code: 'custom',
        path: ['restartMaxMs'],
        message: `must not be less than restartMinMs (${value.restartMinMs}), got ${value.restartMaxMs}`,
      });
  })
  .prefault({})
  .describe('The section of the built-in command backend: raw PCM into the stdin of a shell command.');

/** The validated `command` section, defaults applied. */
export type CommandOptions = z.infer<typeof options>;
