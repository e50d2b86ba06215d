import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeBackend } from '@speakerd/plugin-sdk/testing';
import plugin from '../src/index.js';

// the command backend through the SDK's conformance suite: `cat` appends what it is given to a file in the
// rule's directory (the command runs there), which is read back byte for byte
describeBackend(plugin, {
  options: { run: 'cat >> out.raw' },
  output: ({ dir }) => {
    const file = join(dir, 'out.raw');
    return existsSync(file) ? readFileSync(file) : new Uint8Array(0);
  },
  // no failingOptions: the command runs through /bin/sh, which always starts; a command that fails is reported
  // while it runs (backend "lost", restarted with a back-off: restart.test.ts), never by activate()
});
