#!/usr/bin/env node
// The soak's `command`: reads s16le stereo on stdin and counts frames. Silence (0, 0) is counted apart; every other
// frame must carry the soak's ramp (left = 1..32767 in turn, right = -left). Writes its figures to
// <dir>/<pid>.json twice a second and at EOF.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
mkdirSync(dir, { recursive: true });
const c = { started: Date.now(), frames: 0, silence: 0, errors: 0, first: undefined, last: undefined };
let carry = Buffer.alloc(0);
const save = () => {
  const f = join(dir, `${process.pid}.json`);
  writeFileSync(f + '.tmp', JSON.stringify(c));
  renameSync(f + '.tmp', f);
};
const timer = setInterval(save, 500);
process.stdin.on('data', (d) => {
  const b = carry.length ? Buffer.concat([carry, d]) : d;
  const whole = b.length - (b.length % 4);
  for (let o = 0; o < whole; o += 4) {
    const l = b.readInt16LE(o);
    const r = b.readInt16LE(o + 2);
    if (l === 0 && r === 0) {
      c.silence++;
      continue;
    }
    if (r !== -l || (c.last !== undefined && l !== (c.last % 32767) + 1)) c.errors++;
    if (c.first === undefined) c.first = l;
    c.last = l;
    c.frames++;
  }
  carry = Buffer.from(b.subarray(whole));
});
process.stdin.on('end', () => {
  clearInterval(timer);
  save();
});
