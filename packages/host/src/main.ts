import { runCli, type Actions } from './cli.js';
import { runDaemon } from './daemon.js';
import { runPlay } from './play.js';
import { runDemo } from './demo.js';
import { flushLogs } from './logger.js';

const actions: Actions = { daemon: runDaemon, play: runPlay, demo: runDemo };

/** Entry point of the `speakerd` binary. Exits when the command is done, whatever handles are still open. */
export async function main(argv = process.argv.slice(2)): Promise<void> {
  const code = await runCli(argv, actions);
  // stdout/stderr are synchronous for files and pipes on Linux, so nothing written is lost by exiting now
  flushLogs();
  process.exit(code);
}
