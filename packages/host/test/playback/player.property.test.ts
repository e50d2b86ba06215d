// Property-based tests of the play loop: random tracks, decoders, commands and (mis)behaving backends, run through
// a real Player on a virtual clock (property-helpers.ts), with the protocol's invariants checked on what comes out.
// A failure names the invariant:
// [1] every cancel is answered once, first, with the right answer (finished/stillborn/unknown); play's busy is right
// [2] nothing about an id after its finished/stillborn (a later cancel's `unknown` aside)
// [3] positions never decrease, never pass the track's length, and stand still while paused on a backend that can
//     take audio back
// [4] the output without its zero frames is the played tracks in order, converted, whole (or a prefix when
//     cancelled or never finished): nothing lost, repeated or reordered
// [5] the first playing/paused of a track is at 0; playing/paused/finished only for the current track; finished
//     only after its decoder closed
// [6] nothing throws out of the Player (nor is caught by it as its own bug), it does not livelock, and every played
//     track that can end is reported finished, unless the backend was left failing for good
// [B] (its own property) the host calls pause()/resume() on the backend in turn
//
// Reproduce a failure with SPEAKERD_PROPERTY_SEED=<seed> (fast-check prints it); SPEAKERD_PROPERTY_RUNS sets numRuns.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkOutput,
  expectedOutput,
  simulate,
  trackInput,
  type BackendPlan,
  type CommandPlan,
  type FaultPlan,
  type Op,
  type Scenario,
  type Target,
  type TrackPlan,
} from './property-helpers.js';

const trackArb: fc.Arbitrary<TrackPlan> = fc.record({
  ms: fc.integer({ min: 0, max: 1500 }),
  resampled: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  speed: fc.integer({ min: 50, max: 400 }),
  chunkBytes: fc.integer({ min: 1, max: 4096 }),
  connectAtMs: fc.integer({ min: 0, max: 3000 }),
  stall: fc.option(
    fc.record({ atPermille: fc.integer({ min: 0, max: 1000 }), ms: fc.integer({ min: 1, max: 3000 }) }),
    {
      nil: undefined,
      freq: 4,
    },
  ),
  cutBytes: fc.option(fc.integer({ min: 0, max: 24_000 }), { nil: undefined, freq: 5 }),
});

const targetArb: fc.Arbitrary<Target> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('track' as const), index: fc.nat(7) }) },
  fc.constant({ kind: 'current' as const }),
  fc.constant({ kind: 'next' as const }),
  fc.record({ kind: fc.constant('ghost' as const), index: fc.nat(1) }),
  fc.constant({ kind: 'unknown' as const }),
  fc.record({ kind: fc.constant('answered' as const), index: fc.nat(7) }),
);

const opArb = (volumes: boolean): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ type: fc.constant('play' as const), target: targetArb }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('cancel' as const), target: targetArb }) },
    fc.constant({ type: 'pause' as const }),
    fc.constant({ type: 'resume' as const }),
    ...(volumes
      ? [
          {
            weight: 2,
            // volumes at which no sample of an 8 kHz track (all ≥ 2001) becomes 0, so zero frames are silence
            arbitrary: fc.record({
              type: fc.constant('volume' as const),
              volume: fc.constantFrom(100, 80, 50, 33, 20, 10),
            }),
          },
        ]
      : []),
  );

const commandArb = (volumes: boolean): fc.Arbitrary<CommandPlan> =>
  fc.record({ atMs: fc.integer({ min: 0, max: 8000 }), op: opArb(volumes) });

const faultArb: fc.Arbitrary<FaultPlan> = fc.record({
  atMs: fc.integer({ min: 0, max: 8000 }),
  method: fc.constantFrom('write', 'writable', 'delay', 'activate', 'pause', 'resume'),
  kind: fc.constantFrom('throw', 'reject', 'fraction', 'negative', 'nan', 'more'),
});

function backendArb(kind: 'pipe' | 'flush', faults: boolean): fc.Arbitrary<BackendPlan> {
  return fc.record({
    kind: fc.constant(kind),
    leadMs: fc.integer({ min: 5, max: 120 }),
    writeCaps: fc.oneof(
      { weight: 2, arbitrary: fc.constant<number[]>([]) },
      // a cycle with at least one write that takes something: a backend that takes 0 for ever while saying it has
      // room never plays at all (a dead backend is modelled by deadAtMs, which fails loudly)
      fc
        .array(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 200 })), { minLength: 1, maxLength: 6 })
        .filter((caps) => caps.some((c) => c !== 0)),
    ),
    activateMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
    pauseMs: fc.oneof(fc.constant(-1), fc.constant(0), fc.integer({ min: 1, max: 300 })),
    resumeMs: fc.oneof(fc.constant(-1), fc.constant(0), fc.integer({ min: 1, max: 300 })),
    seamless: fc.boolean(),
    faults: faults ? fc.array(faultArb, { maxLength: 4 }) : fc.constant<FaultPlan[]>([]),
    deadAtMs: faults
      ? fc.option(fc.integer({ min: 0, max: 8000 }), { nil: undefined, freq: 8 })
      : fc.constant(undefined),
  });
}

function scenarioArb(backend: fc.Arbitrary<BackendPlan>, volumes = false): fc.Arbitrary<Scenario> {
  return fc.record({
    tracks: fc.array(trackArb, { minLength: 1, maxLength: 8 }),
    ghosts: fc.integer({ min: 0, max: 2 }),
    commands: fc.array(commandArb(volumes), { maxLength: 12 }),
    autoplay: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    startAtMs: fc.integer({ min: 0, max: 2000 }),
    latencyMs: fc.integer({ min: 0, max: 50 }),
    bufferMs: fc.constantFrom(60_000, 400),
    backend,
  });
}

/** Run the scenario; fail with the broken invariants (fast-check then shrinks and prints the seed). */
async function holds(sc: Scenario, which: 'violations' | 'misuse' = 'violations'): Promise<void> {
  const out = await simulate(sc);
  const found = out[which];
  if (found.length === 0) return;
  const events = out.events.map((e) => {
    const { at, n: _n, ...rest } = e;
    return `${at}: ${JSON.stringify(rest)}`;
  });
  throw new Error(
    `${found.join('\n')}\n` +
      `backend failures: ${JSON.stringify(out.backend.failures)}\n` +
      `events (${events.length}):\n  ${events.slice(0, 60).join('\n  ')}${events.length > 60 ? '\n  …' : ''}`,
  );
}

const scenarios = {
  pipe: scenarioArb(backendArb('pipe', false)),
  flush: scenarioArb(backendArb('flush', false)),
  volume: scenarioArb(fc.oneof(backendArb('pipe', false), backendArb('flush', false)), true),
  pipeFaults: scenarioArb(backendArb('pipe', true)),
  flushFaults: scenarioArb(backendArb('flush', true)),
  // every backend has both hooks, so every pause()/resume() the host makes is seen
  hooks: scenarioArb(
    fc
      .oneof(backendArb('pipe', false), backendArb('flush', false))
      .map((b) => ({ ...b, pauseMs: Math.max(0, b.pauseMs), resumeMs: Math.max(0, b.resumeMs) })),
  ),
};

const RUNS = Number(process.env.SPEAKERD_PROPERTY_RUNS ?? 50);
const SEED = process.env.SPEAKERD_PROPERTY_SEED;
const params = {
  numRuns: RUNS,
  ...(SEED ? { seed: Number(SEED) } : {}),
  // the file stays within its time budget even while a property fails and shrinks: the counterexample found so
  // far is reported when time is up
  interruptAfterTimeLimit: Number(process.env.SPEAKERD_PROPERTY_MS ?? 2800),
};

/** vitest's own limit, past fast-check's (a run in progress finishes after the interrupt). */
const TIMEOUT = params.interruptAfterTimeLimit + 20_000;

describe('the play loop, property-based (fast-check, virtual clock)', { timeout: TIMEOUT }, () => {
  it('a pipe backend (short writes, slow hooks): every invariant', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios.pipe, (sc) => holds(sc)),
      params,
    );
  });

  it('a backend that takes audio back (flush): every invariant', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios.flush, (sc) => holds(sc)),
      params,
    );
  });

  it('volume changes: the output is the tracks at the volume in force when each frame was written', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios.volume, (sc) => holds(sc)),
      params,
    );
  });

  it('a pipe backend that fails, rejects and breaks the contract: every invariant', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios.pipeFaults, (sc) => holds(sc)),
      params,
    );
  });

  it('a flushing backend that fails, rejects and breaks the contract: every invariant', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios.flushFaults, (sc) => holds(sc)),
      params,
    );
  });

  it("[B] the host calls the backend's pause() and resume() in turn", async () => {
    await fc.assert(
      fc.asyncProperty(scenarios.hooks, (sc) => holds(sc, 'misuse')),
      params,
    );
  });
});

describe('the harness itself', () => {
  const plain = (over: Partial<TrackPlan> = {}): TrackPlan => ({
    ms: 300,
    resampled: false,
    speed: 200,
    chunkBytes: 333,
    connectAtMs: 0,
    stall: undefined,
    cutBytes: undefined,
    ...over,
  });
  const pipe: BackendPlan = {
    kind: 'pipe',
    leadMs: 20,
    writeCaps: [],
    activateMs: 0,
    pauseMs: -1,
    resumeMs: -1,
    faults: [],
    seamless: false,
    deadAtMs: undefined,
  };

  it('a plain scenario plays both tracks whole, in order, and reports them finished', async () => {
    const sc: Scenario = {
      tracks: [plain(), plain({ ms: 200, resampled: true, speed: 100, chunkBytes: 101, connectAtMs: 50 })],
      ghosts: 0,
      commands: [],
      autoplay: true,
      startAtMs: 0,
      latencyMs: 5,
      bufferMs: 60_000,
      backend: pipe,
    };
    const out = await simulate(sc);
    expect(out.violations).toEqual([]);
    expect(out.played).toEqual(['t0', 't1']);
    expect([...out.answered.keys()]).toEqual(['t0', 't1']);
    const nonzero = out.output.samples.filter((v) => v !== 0).length;
    expect(nonzero).toBeGreaterThanOrEqual(300 * 8 + 200 * 8 - 10);
  });

  it('the output check catches a frame lost, repeated or out of order, and allows silence anywhere', () => {
    const sc: Scenario = {
      tracks: [plain(), plain({ ms: 100 })],
      ghosts: 0,
      commands: [],
      autoplay: true,
      startAtMs: 0,
      latencyMs: 0,
      bufferMs: 60_000,
      backend: pipe,
    };
    const inputs = sc.tracks.map((t, i) => trackInput(t, i));
    const a = Array.from(expectedOutput(sc.tracks[0]!, inputs[0]!));
    const b = Array.from(expectedOutput(sc.tracks[1]!, inputs[1]!));
    const answered = new Map([
      ['t0', { type: 'finished' as const, byCancel: false, at: 0 }],
      ['t1', { type: 'finished' as const, byCancel: false, at: 0 }],
    ]);
    const check = (samples: number[]) => {
      const v: string[] = [];
      const out = { samples: Int16Array.from(samples), volumes: new Float64Array(samples.length).fill(100) };
      checkOutput(sc, inputs, ['t0', 't1'], answered, out, false, v);
      return v;
    };
    expect(check([0, 0, ...a.slice(0, 7), 0, ...a.slice(7), 0, ...b, 0])).toEqual([]);
    expect(check([...a.slice(0, 7), ...a.slice(8), ...b])).not.toEqual([]); // lost
    expect(check([...a.slice(0, 8), ...a.slice(7), ...b])).not.toEqual([]); // repeated
    expect(check([...a.slice(0, 7), a[8]!, a[7]!, ...a.slice(9), ...b])).not.toEqual([]); // reordered
    expect(check([...b, ...a])).not.toEqual([]); // tracks swapped
    expect(check([...a, ...b, ...b.slice(0, 3)])).not.toEqual([]); // extra
    // a cancelled track leaves a prefix, possibly empty
    const cancelled = new Map([...answered, ['t0', { type: 'finished' as const, byCancel: true, at: 0 }]]);
    const v: string[] = [];
    const samples = Int16Array.from([...a.slice(0, 100), ...b]);
    checkOutput(
      sc,
      inputs,
      ['t0', 't1'],
      cancelled,
      { samples, volumes: new Float64Array(samples.length).fill(100) },
      false,
      v,
    );
    expect(v).toEqual([]);
  });
});
