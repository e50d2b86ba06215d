import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeBackend } from '@speakerd/plugin-sdk/testing';
import plugin from '../src/index.js';

/** The data chunk of a WAV file the recorder wrote (its header is checked in recorder.test.ts). */
function data(file: Buffer): Buffer {
  let off = 12;
  while (off + 8 <= file.length) {
    const size = file.readUInt32LE(off + 4);
    if (file.toString('latin1', off, off + 4) === 'data') return file.subarray(off + 8, off + 8 + size);
    off += 8 + size + (size & 1);
  }
  return Buffer.alloc(0);
}

describeBackend(plugin, {
  options: { dir: 'recordings' },
  // every session's data, in the order the files were written
  output: ({ dir }) => {
    const out = join(dir, 'recordings');
    return Buffer.concat(
      readdirSync(out)
        .sort()
        .map((f) => data(readFileSync(join(out, f)))),
    );
  },
  // a directory that cannot be made (a file is in the way): the first session fails with a coded error
  failingOptions: (dir: string) => {
    writeFileSync(join(dir, 'in-the-way'), '');
    return { dir: 'in-the-way/recordings' };
  },
});
