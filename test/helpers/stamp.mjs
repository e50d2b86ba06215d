#!/usr/bin/env node
// A timestamping sink for the command backend: `node test/helpers/stamp.mjs OUT STAMPS`.
//
// Copies stdin to OUT and appends one line per read to STAMPS:
//
//   <wall time in ms, with fractions: performance.timeOrigin + performance.now()> <byte offset in OUT after the read>
//
// so that a test (which reads its own times on the same scale) can tell when each byte reached the command. Both
// files are opened for appending and the offset continues from OUT's size, so a restarted command (the backend
// ends it when it goes idle and starts it again) keeps one continuous record. Reads are synchronous and each line
// is written at once (no buffering), so the time is taken as the read returns and a test may read STAMPS while
// this runs.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

const [out, stamps] = process.argv.slice(2);
if (!out || !stamps) {
  process.stderr.write('usage: stamp.mjs OUT STAMPS\n');
  process.exit(2);
}
const outFd = openSync(out, 'a');
const stampFd = openSync(stamps, 'a');
let offset = fstatSync(outFd).size;
const buf = Buffer.alloc(1 << 16);
const pause = new Int32Array(new SharedArrayBuffer(4));

for (;;) {
  let n;
  try {
    n = readSync(0, buf, 0, buf.length, null);
  } catch (err) {
    if (err.code === 'EAGAIN') {
      Atomics.wait(pause, 0, 0, 1); // stdin is non-blocking: try again in 1 ms
      continue;
    }
    if (err.code === 'EOF') break;
    throw err;
  }
  if (n === 0) break;
  const at = performance.timeOrigin + performance.now();
  for (let done = 0; done < n;) done += writeSync(outFd, buf, done, n - done);
  offset += n;
  writeSync(stampFd, `${at.toFixed(3)} ${offset}\n`);
}
closeSync(outFd);
closeSync(stampFd);
