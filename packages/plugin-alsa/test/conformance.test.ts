import { join } from 'node:path';
import { it } from 'vitest';
import { describeBackend } from '@speakerd/plugin-sdk/testing';
import plugin from '../src/index.js';
import { haveAlsa, readCapture } from './helpers.js';

// the alsa backend through the SDK's conformance suite, on the real clock (it is device-paced), writing to the
// test PCM that captures the exact bytes into a file in the rule's directory (test/fixtures/alsa/asound.conf)
if (haveAlsa())
  describeBackend(plugin, {
    options: (dir: string) => ({ device: `speakerd_capture:${join(dir, 'out.raw')}` }),
    output: ({ dir }) => readCapture(join(dir, 'out.raw')),
    // a device that is absent or busy is not an error (it may come later: reported "lost", retried), but one
    // that cannot play the format is: the test PCM that runs at 48 kHz only, asked for 44.1 kHz
    failingOptions: (dir: string) => ({ device: `speakerd_capture48:${join(dir, 'refused.raw')}` }),
    // the test PCM writes over libasound's null device, which does not pace: the writer thread drains the queue
    // as fast as the CPU allows, so how much the backend holds, and when it has room again, depend only on the
    // machine's speed (these passed or failed by load); test/alsa.test.ts plays through it end to end instead
    skip: {
      'back-pressure': 'the test PCM (file over null) does not pace: the queue drains as fast as the CPU allows',
      wake: 'the test PCM (file over null) does not pace: the queue drains as fast as the CPU allows',
    },
  });
else it.skip('alsa backend conformance (ALSA is not available here)', () => {});
