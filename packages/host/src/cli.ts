import { Command, InvalidArgumentError, Option } from 'commander';
import { pluginLines } from './plugin-list.js';
import { addDoctorCommand } from './doctor.js';
import { closest } from './plugins.js';
import { ErrorCodes, SpeakerdError, formatToString, isSpeakerdError } from '@speakerd/plugin-sdk';
import { ConfigError, configSource, configToJson, loadConfig, type ResolvedConfig } from './config.js';
import { createLogger, LOG_LEVELS, type LogLevel } from './logger.js';
import { configSchema, schemaToText } from './schema.js';
import { VERSION } from './version.js';

/** Exit codes: 0 fine, 1 failure at run time, 2 bad configuration or usage (PROTOCOL.md section 1). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

export interface GlobalOptions {
  config?: string;
  allowRoot?: boolean;
  logLevel: LogLevel;
}

/** Thrown to leave with an exit code after the message has been printed. */
export class ExitError extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

function fail(message: string, code = EXIT_CONFIG): never {
  process.stderr.write(`speakerd: ${message}\n`);
  throw new ExitError(code);
}

/** Print a configuration or plugin error the way people read it (no stack trace), then exit 2. */
export function failWith(err: unknown): never {
  if (err instanceof ConfigError) fail(`invalid configuration\n${err.describe()}`);
  if (isSpeakerdError(err))
    fail(
      err.toString(),
      err.code === ErrorCodes.BACKEND || err.code === ErrorCodes.SOCKET ? EXIT_FAILURE : EXIT_CONFIG,
    );
  throw err;
}

export function refuseRoot(opts: GlobalOptions): void {
  if (typeof process.getuid === 'function' && process.getuid() === 0 && !opts.allowRoot)
    fail(
      `${ErrorCodes.ROOT}: refusing to run as root (a sound server has no need for it); ` +
        `run as an ordinary user, or pass --allow-root if you really mean it`,
    );
}

export async function loadOrFail(opts: GlobalOptions, overrides?: Record<string, unknown>): Promise<ResolvedConfig> {
  try {
    return await loadConfig(opts.config, process.cwd(), overrides);
  } catch (err) {
    failWith(err);
  }
}

function parseLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return value as LogLevel;
}

/** What the subcommands do; the daemon and `play` are provided by the caller so the CLI stays thin. */
export interface Actions {
  daemon(opts: GlobalOptions): Promise<number>;
  play(files: string[], opts: GlobalOptions): Promise<number>;
  demo(opts: GlobalOptions): Promise<number>;
}

export function buildProgram(actions: Actions): Command {
  const program = new Command('speakerd');
  const addGlobals = (cmd: Command): Command =>
    cmd
      .addOption(new Option('-c, --config <file>', 'configuration file (default: search for speakerrc here)'))
      .addOption(new Option('--allow-root', 'run even as root'))
      .addOption(
        new Option('--log-level <level>', `log level: ${LOG_LEVELS.join('|')}`).argParser(parseLevel).default('info'),
      );

  addGlobals(program)
    .description(
      'Audio output host for a music server: decoders stream PCM into a Unix socket, the music server ' +
        'controls playback over stdin/stdout (JSON lines), and tracks play back to back, gapless, through one ' +
        'backend (alsa, command, rtp, or a plugin).',
    )
    .addHelpText(
      'after',
      '\nWithout a command, speakerd runs as the output host: see docs/PROTOCOL.md for the control channel and ' +
        'the decoder socket. Exit codes: 0 done, 1 failed, 2 bad configuration or usage.',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stderr.write(s) })
    .allowExcessArguments(true)
    .action(async () => {
      // the root takes no arguments: a word here is a subcommand that does not exist (a typo)
      const word = program.args[0];
      if (word !== undefined) {
        const known = program.commands.map((c) => c.name());
        const near = closest(word, known);
        fail(
          `unknown command "${word}"${near.length > 0 ? `. Did you mean "${near[0]}"?` : ''} ` +
            `(commands: ${known.join(', ')}; "speakerd --help" says more)`,
        );
      }
      const opts = program.opts<GlobalOptions>();
      process.exitCode = await actions.daemon(opts);
    });

  // --help and --version are for people: print them on stdout (the control channel is not in use then)
  program.configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });

  const addOutputs = (cmd: Command): Command =>
    cmd
      .addOption(new Option('--backend <name>', 'the backend for this run (alsa, command, rtp, auto, a plugin)'))
      .addOption(
        new Option(
          '--output <spec>',
          'the output for this run: alsa:DEVICE, command:CMD, file:PATH (raw PCM), rtp:HOST[:PORT], or auto',
        ),
      );

  addOutputs(addGlobals(program.command('play')))
    .description(
      'decode FILEs (with ffmpeg; WAV files without it) and play them in order through the configured backend, ' +
        'with progress. Keys: space pause/resume, n next, +/- volume, q quit',
    )
    .argument('<file...>', 'audio files')
    .action(async (files: string[], _o: unknown, cmd: Command) => {
      process.exitCode = await actions.play(files, cmd.optsWithGlobals<GlobalOptions>());
    });

  addOutputs(addGlobals(program.command('demo')))
    .description(
      'play a short demo (three generated tones) through the configured output, or, with none configured, ' +
        'the sound card if it opens and else RTP on 127.0.0.1:5004 (it prints how to listen)',
    )
    .action(async (_o: unknown, cmd: Command) => {
      process.exitCode = await actions.demo(cmd.optsWithGlobals<GlobalOptions>());
    });

  addGlobals(program.command('check-config'))
    .description('validate the configuration and print it, resolved, as JSON (exit 0 valid, 2 invalid)')
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      refuseRoot(opts);
      const config = await loadOrFail(opts);
      if (config.file === undefined) process.stderr.write(`speakerd: ${configSource(config)}\n`);
      process.stdout.write(
        JSON.stringify(
          {
            file: config.file ?? null,
            ...(config.file === undefined ? { searched: config.searched ?? [] } : {}),
            backend: config.backend.plugin.manifest.name,
            config: configToJson(config),
            ...(config.unusedSections.length > 0 ? { notLoaded: config.unusedSections } : {}),
          },
          null,
          2,
        ) + '\n',
      );
      process.exitCode = EXIT_OK;
    });

  addGlobals(program.command('schema'))
    .description(
      "print the JSON Schema of speakerrc for this configuration (the host's keys and every loaded plugin's " +
        'section), for editors',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      refuseRoot(opts);
      let text: string;
      try {
        text = schemaToText(await configSchema(opts.config));
      } catch (err) {
        failWith(err);
      }
      process.stdout.write(text);
      process.exitCode = EXIT_OK;
    });

  addGlobals(program.command('plugins'))
    .description(
      'list the plugins speakerd loads and the plugin packages installed where it looks, where from, and whether ' +
        'each can run here',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      refuseRoot(opts);
      const { lines, error } = await pluginLines(opts.config);
      for (const l of lines)
        process.stdout.write(
          `${l.name}\t${l.version}\t${l.origin}\t${l.file}\t${l.status}${l.description ? `\t${l.description}` : ''}\n`,
        );
      if (error !== undefined) process.stderr.write(`speakerd: the configuration does not load: ${error}\n`);
      process.exitCode = error === undefined ? EXIT_OK : EXIT_CONFIG;
    });
  addDoctorCommand(program, addGlobals);

  return program;
}

/** Run the CLI; resolves to the exit code. */
export async function runCli(argv: string[], actions: Actions): Promise<number> {
  const program = buildProgram(actions);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof ExitError) return err.exitCode;
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return EXIT_OK;
    if (typeof code === 'string' && code.startsWith('commander.')) return EXIT_CONFIG;
    if (isSpeakerdError(err)) {
      process.stderr.write(`speakerd: ${(err as SpeakerdError).toString()}\n`);
      return EXIT_FAILURE;
    }
    process.stderr.write(
      `speakerd: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return EXIT_FAILURE;
  }
}

export { createLogger, formatToString };
