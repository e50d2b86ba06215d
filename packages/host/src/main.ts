import { runCli, type Actions } from './cli.js';
import { flushLogsIfAny } from './log-flush.js';

// each loaded when it runs: `speakerd --version` and `--help` load none of them
const actions: Actions = {
  daemon: async (opts) => (await import('./daemon.js')).runDaemon(opts),
  play: async (files, opts) => (await import('./play.js')).runPlay(files, opts),
  demo: async (opts) => (await import('./demo.js')).runDemo(opts),
};

/** Entry point of the `speakerd` binary. Exits when the command is done, whatever handles are still open. */
export async function main(argv = process.argv.slice(2)): Promise<void> {
  const code = await runCli(argv, actions);
  // stdout/stderr are synchronous for files and pipes on Linux, so nothing written is lost by exiting now
  flushLogsIfAny();
  process.exit(code);
}
