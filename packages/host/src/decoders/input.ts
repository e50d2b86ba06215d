import type { Socket } from 'node:net';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import type { Track } from '../playback/track.js';
import { WavHeaderReader } from './wav.js';
import type { AcceptedDecoder } from './server.js';

/** What the engine hears from one decoder connection. */
export interface InputEvents {
  /** The format is known (at once for raw PCM; from the `fmt ` chunk for a WAV stream): send `arrived`. */
  arrived(format: SampleFormat): void;
  /** The WAV stream's header is unusable: report it; the connection is closed and the track gets no audio. */
  badWav(message: string): void;
  /** New input, or the end of it: the play loop may want to fill. */
  changed(): void;
}

/**
 * Feeds one accepted decoder connection into its track: raw PCM as it comes, or a WAV stream whose RIFF header is
 * read first (bounded: the `data` chunk must start within the first 64 KiB, MAX_WAV_HEADER_BYTES). Back-pressure is the
 * track's (it pauses and resumes the socket). EOF, a reset or an error ends the track's input.
 */
export function attachInput(decoder: AcceptedDecoder, track: Track, events: InputEvents): void {
  const socket: Socket = decoder.socket;
  track.attach({
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    destroy: () => socket.destroy(),
  });
  /** PCM bytes still to come for a WAV stream with a known data size (bytes after its data chunk are ignored). */
  let left: number | undefined;
  /** The WAV header being read (incrementally: linear in its bytes however they are split), until `data`. */
  let header: WavHeaderReader | undefined;

  const pcm = (chunk: Buffer) => {
    if (left !== undefined) {
      if (left <= 0) return;
      if (chunk.length > left) chunk = chunk.subarray(0, left);
      left -= chunk.length;
    }
    if (chunk.length === 0) return;
    track.pushInput(chunk);
    events.changed();
  };

  const wav = (chunk: Buffer) => {
    const r = header!.push(chunk);
    if (r.kind === 'more') return;
    if (r.kind === 'error') return fail(r.message);
    header = undefined;
    track.setInput(r.format);
    left = r.dataBytes;
    events.arrived(r.format);
    pcm(Buffer.from(r.rest));
  };

  const fail = (message: string) => {
    header = undefined;
    socket.off('data', take);
    track.endInput();
    socket.destroy();
    events.badWav(`bad WAV stream: ${message}`);
    events.changed();
  };

  const take = (chunk: Buffer) => (header ? wav(chunk) : pcm(chunk));
  const end = () => {
    if (track.eof) return;
    const cut = header !== undefined && header.offset > 0;
    header = undefined;
    track.endInput();
    if (cut) events.badWav('bad WAV stream: it ended inside its RIFF header');
    events.changed();
  };

  if (decoder.encoding === 'wav') {
    header = new WavHeaderReader();
  } else {
    track.setInput(decoder.encoding);
    events.arrived(decoder.encoding);
  }
  if (decoder.initial.length > 0) take(decoder.initial);
  if (track.eof) return; // a bad WAV header in the first bytes
  socket.on('data', take);
  socket.on('end', end);
  socket.on('close', end);
  socket.on('error', end);
}
