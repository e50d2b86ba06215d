import { Command, InvalidArgumentError, Option } from 'commander';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, ExitError, fail } from './cli-exit.js';
import { LOG_LEVELS, type LogLevel } from './log-levels.js';
import type { GlobalOptions } from './cli-options.js';
import { VERSION } from './version.js';

// The CLI's definition loads only commander and the three small modules above: `--help` and `--version` cost little
// more than Node's own start. Each subcommand imports what it uses when it runs.

export { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, ExitError };

export type { GlobalOptions } from './cli-options.js';

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
        const { closest } = await import('./plugins.js');
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
      const { refuseRoot, loadOrFail } = await import('./cli-config.js');
      const { configSource, configToJson } = await import('./config.js');
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
      const { refuseRoot, failWith } = await import('./cli-config.js');
      const { configSchema, schemaToText } = await import('./schema.js');
      refuseRoot(opts);
      const text = await configSchema(opts.config).then(schemaToText, failWith);
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
      const { refuseRoot } = await import('./cli-config.js');
      const { pluginLines } = await import('./plugin-list.js');
      refuseRoot(opts);
      const { lines, error } = await pluginLines(opts.config);
      for (const l of lines)
        process.stdout.write(
          `${l.name}\t${l.version}\t${l.origin}\t${l.file}\t${l.status}${l.description ? `\t${l.description}` : ''}\n`,
        );
      if (error !== undefined) process.stderr.write(`speakerd: the configuration does not load: ${error}\n`);
      process.exitCode = error === undefined ? EXIT_OK : EXIT_CONFIG;
    });
  addGlobals(program.command('doctor'))
    .description(
      'check what speakerd needs here — the config file, the addons, libasound, the configured output, ffmpeg, ' +
        'the decoder socket directory, RTP on loopback — one line each with what to do (exit 0, or 1 when a check fails)',
    )
    .option('--json', 'print the checks as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions & { json?: boolean }>();
      const { runDoctor, formatCheck } = await import('./doctor.js');
      const report = await runDoctor(opts.config, process.cwd(), opts.allowRoot === true);
      if (o.json || opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else {
        for (const c of report.checks) process.stdout.write(formatCheck(c) + '\n');
        const fails = report.checks.filter((c) => c.level === 'fail').length;
        const warns = report.checks.filter((c) => c.level === 'warn').length;
        process.stdout.write(
          fails === 0
            ? `speakerd doctor: nothing fails${warns > 0 ? ` (${warns} warning${warns === 1 ? '' : 's'})` : ''}\n`
            : `speakerd doctor: ${fails} check${fails === 1 ? '' : 's'} failed${warns > 0 ? `, ${warns} warning${warns === 1 ? '' : 's'}` : ''}\n`,
        );
      }
      process.exitCode = report.ok ? 0 : 1;
    });

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
    const { isSpeakerdError } = await import('@speakerd/plugin-sdk');
    if (isSpeakerdError(err)) {
      process.stderr.write(`speakerd: ${err.toString()}\n`);
      return EXIT_FAILURE;
    }
    process.stderr.write(
      `speakerd: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return EXIT_FAILURE;
  }
}
