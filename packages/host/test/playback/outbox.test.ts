// Outbox: the direct answer to a command goes out before any event the command causes (PROTOCOL.md, "Order").
import { describe, expect, it } from 'vitest';
import { Outbox, type Event } from '../../src/protocol/outbox.js';

function make() {
  const written: Event[] = [];
  return { written, outbox: new Outbox((e) => written.push(e)) };
}

describe('Outbox', () => {
  it('sends events at once outside a command', () => {
    const { written, outbox } = make();
    outbox.send({ type: 'playing', id: 'a' });
    expect(written).toEqual([{ type: 'playing', id: 'a' }]);
    outbox.send({ type: 'finished', id: 'a' });
    expect(written.map((e) => e.type)).toEqual(['playing', 'finished']);
  });

  it('during a command the answer goes out at once and the events it caused follow, in the order made', () => {
    const { written, outbox } = make();
    const seen: unknown[][] = [];
    outbox.command((answer) => {
      outbox.send({ type: 'paused', id: 'b' });
      outbox.send({ type: 'playing', id: 'b' });
      seen.push(written.map((e) => e.type)); // nothing out yet
      answer({ type: 'finished', id: 'a', seq: 7 });
      seen.push(written.map((e) => e.type)); // only the answer
      outbox.send({ type: 'finished', id: 'b' });
    });
    expect(seen).toEqual([[], ['finished']]);
    expect(written).toEqual([
      { type: 'finished', id: 'a', seq: 7 },
      { type: 'paused', id: 'b' },
      { type: 'playing', id: 'b' },
      { type: 'finished', id: 'b' },
    ]);
    // and after the command, events go out at once again
    outbox.send({ type: 'playing', id: 'c' });
    expect(written.at(-1)).toEqual({ type: 'playing', id: 'c' });
  });

  it('a command without a direct answer still sends what it caused, after it', () => {
    const { written, outbox } = make();
    outbox.command(() => {
      outbox.send({ type: 'playing', id: 'a' });
      expect(written).toEqual([]);
    });
    expect(written).toEqual([{ type: 'playing', id: 'a' }]);
  });

  it('an exception inside the handler still flushes what was held, and the outbox is not left holding', () => {
    const { written, outbox } = make();
    expect(() =>
      outbox.command((answer) => {
        answer({ type: 'unknown', id: 'x', seq: 1 });
        outbox.send({ type: 'playing', id: 'a' });
        throw new Error('handler bug');
      }),
    ).toThrow('handler bug');
    expect(written).toEqual([
      { type: 'unknown', id: 'x', seq: 1 },
      { type: 'playing', id: 'a' },
    ]);
    outbox.send({ type: 'paused', id: 'a' });
    expect(written.at(-1)).toEqual({ type: 'paused', id: 'a' });
  });

  it('a nested command keeps the order: its events are held with the outer ones', () => {
    const { written, outbox } = make();
    outbox.command((answer) => {
      outbox.send({ type: 'e1' });
      outbox.command((inner) => inner({ type: 'inner-answer' }));
      answer({ type: 'answer' });
    });
    expect(written.map((e) => e.type)).toEqual(['answer', 'e1', 'inner-answer']);
  });
});
