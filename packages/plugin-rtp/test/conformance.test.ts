import { afterAll } from 'vitest';
import { describeBackend } from '@speakerd/plugin-sdk/testing';
import plugin from '../src/index.js';
import { Receiver } from './helpers.js';

// the rtp backend through the SDK's conformance suite, on the virtual clock (so the JS sender: the native one
// needs the real clock and is tested in native.test.ts), sending to a receiver on 127.0.0.1. Each rule's backend
// is a new RTP session with its own SSRC: the output is the payload of the last session's packets, in order.
const receiver = await Receiver.open('127.0.0.1');
afterAll(() => receiver.close());

async function lastSession(expectedBytes: number): Promise<Uint8Array> {
  const end = Date.now() + 3000;
  for (;;) {
    const ssrc = receiver.rtp.at(-1)?.ssrc;
    const packets = receiver.rtp.filter((p) => p.ssrc === ssrc).sort((a, b) => a.seq - b.seq);
    const bytes = Buffer.concat(packets.map((p) => p.payload));
    if (bytes.length >= expectedBytes || Date.now() > end) return bytes;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeBackend(plugin, {
  options: { destination: '127.0.0.1', port: receiver.port, sdp: 'stream.sdp' },
  output: ({ expectedBytes }) => lastSession(expectedBytes),
  // the SDP file cannot be written (a file is in the way of its directory): configure() fails
  failingOptions: { destination: '127.0.0.1', port: receiver.port, sdp: '/dev/null/stream.sdp' },
  commands: { 'add-recipient': { address: '127.0.0.1', port: receiver.port } },
});
