// Tolerant install step for plugins with a native addon (plain JavaScript: it runs at `npm install`, before
// anything is compiled). Builds the addon with node-gyp when a compiler is there; otherwise prints what is missing
// and how to get it, and succeeds, so that installing speakerd never fails for want of a compiler.
//
//   // scripts/install.js of a plugin, run by its package.json "install" script; the SDK is an optional peer that
//   // may not be installed yet when npm runs it, so it is imported inside a try
//   try {
//     const { buildAddon } = await import('@speakerd/plugin-sdk/build-addon');
//     buildAddon({ packageName: '@me/speakerd-plugin-x', packageDir: new URL('..', import.meta.url),
//                  without: 'the x backend is unavailable' });
//   } catch (err) {
//     process.stderr.write(`@me/speakerd-plugin-x: the native addon was not built (${err.message}).\n`);
//   }
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @param {object} o
 * @param {string} o.packageName  the plugin's npm name, for the messages
 * @param {string | URL} o.packageDir  the directory with binding.gyp
 * @param {string} o.without  what happens while the addon is missing ("the alsa backend is unavailable")
 * @param {boolean} [o.linuxOnly]  skip (with a message) on other platforms
 * @returns {boolean} whether the addon was built
 */
export function buildAddon({ packageName, packageDir, without, linuxOnly = true }) {
  const dir = packageDir instanceof URL ? fileURLToPath(packageDir) : packageDir;
  const warn = (why) => {
    process.stderr.write(
      `${packageName}: the native addon was not built (${why}).\n` +
        `  Until it is, ${without}: install g++, make and python3 (apt-get install g++ make python3),\n` +
        `  then run "npm rebuild ${packageName}".\n`,
    );
    return false;
  };
  if (linuxOnly && process.platform !== 'linux') return warn(`it is for Linux only, this is ${process.platform}`);
  let gyp;
  try {
    gyp = createRequire(join(dir, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return warn('node-gyp is not installed');
  }
  const args = [gyp, 'rebuild'];
  // Build against the headers of the running Node when they are installed next to it (no download needed).
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const r = spawnSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) return warn(r.error.message);
  if (r.status !== 0) return warn(`node-gyp exited with status ${r.status}`);
  return true;
}
