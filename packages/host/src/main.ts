import { runCli, type Actions } from './cli.js';
import { runDaemon } from './daemon.js';
import { runPlay } from './play.js';

const actions: Actions = { daemon: runDaemon, play: runPlay };

/** Entry point of the `speakerd` binary. */
export async function main(argv = process.argv.slice(2)): Promise<void> {
  const code = await runCli(argv, actions);
  process.exitCode = code;
}
