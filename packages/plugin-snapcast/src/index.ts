import { stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { definePlugin, packageInfo, type PluginContext } from '@speakerd/plugin-sdk';
import { SnapcastBackend } from './backend.js';
import { options, type SnapcastOptions } from './options.js';
import { section } from './section.js';

const pkg = packageInfo(import.meta.url);

export default definePlugin({
  manifest: {
    name: section.name,
    version: pkg.version,
    sdk: '^0.1.0',
    description: section.description,
  },
  options,
  backend: SnapcastBackend,
  probe: (opts, context) => probe(opts, context),
});

/**
 * Can the stream be fed from here? tcp "connect": snapserver's source port accepts a connection (closed at once;
 * snapserver takes it as a source that sent nothing). pipe: the fifo exists and is one (it is not opened: closing
 * it would be an end of file to snapserver). tcp "listen": snapserver connects to us, nothing to check before.
 */
export async function probe(opts: SnapcastOptions, context: PluginContext): Promise<string | undefined> {
  if (opts.source === 'pipe') {
    const path = resolvePath(context.configDir, opts.pipe);
    try {
      const s = await stat(path);
      return s.isFIFO() ? undefined : `${path} is not a fifo: snapserver's pipe source (mode=create) makes it`;
    } catch {
      return `${path} does not exist: start snapserver with source = pipe://${path}?name=${opts.stream}&mode=create`;
    }
  }
  if (opts.mode === 'listen') return undefined;
  return new Promise((resolve) => {
    const socket = connect({ host: opts.host, port: opts.port });
    const done = (why: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer from snapserver's tcp source ${opts.host}:${opts.port}`), 1500);
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(`snapserver's tcp source ${opts.host}:${opts.port}: ${err.code ?? err.message} (is snapserver running?)`),
    );
  });
}

export { options, SnapcastBackend };
export { SnapcastErrorCodes, parseSnapFormat, snapFormatString } from './format.js';
export { FIRST_CONNECT_GRACE_MS, STABLE_AFTER_MS } from './backend.js';
export type { SnapcastOptions } from './options.js';
