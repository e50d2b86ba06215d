import { describe, expect, it } from 'vitest';
import type { BackendState } from '../src/backend.js';
import { OutputState } from '../src/output-state.js';

describe('OutputState', () => {
  it('reports each change once, swallows repeats, and says whether it reported', () => {
    const sent: [BackendState, string][] = [];
    const s = new OutputState({ backendState: (state, message) => sent.push([state, message]) });
    expect(s.state).toBe('ok');
    expect(s.ok('fine')).toBe(false); // it starts ok: nothing to say
    expect(s.lost('send failed')).toBe(true);
    expect(s.lost('send failed again')).toBe(false);
    expect(s.state).toBe('lost');
    expect(s.recovering('retrying')).toBe(true);
    expect(s.lost('still failing')).toBe(true);
    expect(s.ok('back')).toBe(true);
    expect(s.ok('back')).toBe(false);
    expect(s.report('lost', 'again')).toBe(true);
    expect(s.report('lost', 'again')).toBe(false);
    expect(sent).toEqual([
      ['lost', 'send failed'],
      ['recovering', 'retrying'],
      ['lost', 'still failing'],
      ['ok', 'back'],
      ['lost', 'again'],
    ]);
  });
});
