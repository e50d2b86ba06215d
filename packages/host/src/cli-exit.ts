/** Exit codes: 0 fine, 1 failure at run time, 2 bad configuration or usage (PROTOCOL.md section 1). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

/** Thrown to leave with an exit code after the message has been printed. */
export class ExitError extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** Print `speakerd: message` on stderr and leave with `code`. */
export function fail(message: string, code = EXIT_CONFIG): never {
  process.stderr.write(`speakerd: ${message}\n`);
  throw new ExitError(code);
}
