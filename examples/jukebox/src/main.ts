#!/usr/bin/env node
// speakerd-jukebox [--config FILE] [--speakerd BIN] [--allow-root] [--playlist FILE] [--repeat] FILE…: play the
// files gaplessly through a speakerd it launches, printing what plays; exits 0 when all have played, 1 when one
// could not be. With --repeat it plays the queue again and again (a service: see examples/systemd).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SpeakerdClient } from '@speakerd/host/client';
import { Jukebox } from './jukebox.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    config: { type: 'string' },
    speakerd: { type: 'string' },
    'allow-root': { type: 'boolean', default: false },
    'log-level': { type: 'string' },
    playlist: { type: 'string' },
    repeat: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
/** An M3U playlist: one file a line, `#` comments, paths relative to the playlist's directory. */
const fromPlaylist = (file: string) =>
  readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => resolve(dirname(file), l));
const files = [...(values.playlist === undefined ? [] : fromPlaylist(values.playlist)), ...positionals];
if (values.help || files.length === 0) {
  process.stderr.write(
    'usage: speakerd-jukebox [--config FILE] [--speakerd BIN] [--allow-root] [--log-level LEVEL] ' +
      '[--playlist FILE.m3u] [--repeat] FILE…\n',
  );
  process.exit(values.help ? 0 : 2);
}

const client = await SpeakerdClient.spawn({
  ...(values.config === undefined ? {} : { config: values.config }),
  ...(values.speakerd === undefined ? {} : { bin: values.speakerd }),
  args: [
    ...(values['allow-root'] ? ['--allow-root'] : []),
    ...(values['log-level'] === undefined ? [] : ['--log-level', values['log-level']]),
  ],
  stderr: 'inherit',
});
process.stdout.write(`speakerd ${client.ready.version}: ${client.ready.backend}\n`);
const jukebox = new Jukebox(client);
const stop = () => {
  jukebox.stop();
  void client.close().then(() => process.exit(130));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
// --repeat: the queue again, as soon as its last track plays (so the round is gapless too); a playlist where
// nothing plays ends the run instead
if (values.repeat) jukebox.on('playing', (t) => t === jukebox.tracks.at(-1) && jukebox.enqueue(...files));
jukebox.enqueue(...files);
const failed = await jukebox.run();
jukebox.stop();
const code = await client.close();
process.exit(failed.length > 0 || code !== 0 ? 1 : 0);
