import { afterAll } from 'vitest';
import { describeBackend } from '@speakerd/plugin-sdk/testing';
import plugin from '../src/index.js';
import { sink, trimSilence } from './helpers.js';

// The snapcast backend through the SDK's conformance suite, feeding a real TCP listener in place of snapserver's
// tcp source (mode=server). Each rule makes its own backend, hence its own connection; what the rule wrote is
// the latest connection's bytes without the silence the stream starts and ends with (the stream is silent until
// the first write and its last chunk is padded with silence).
const server = await sink();
afterAll(() => server.close());

describeBackend(plugin, {
  options: { port: server.port, sampleFormat: '44100:16:2', control: { enabled: false } },
  output: async ({ format }) => {
    const c = server.connections.at(-1);
    if (!c) return new Uint8Array(0);
    await c.closed;
    return trimSilence(c.bytes(), format.channels * 2);
  },
  // listening on the port the test's listener holds: init() fails with SPEAKERD_ERR_SNAPCAST_LISTEN
  failingOptions: { mode: 'listen', port: server.port, sampleFormat: '44100:16:2', control: { enabled: false } },
  commands: { status: {} },
});
