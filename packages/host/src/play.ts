import { failWith, refuseRoot, type GlobalOptions } from './cli.js';
import { ErrorCodes, SpeakerdError } from '@speakerd/plugin-sdk';

/** `speakerd play FILE…`: a small built-in music server. */
export async function runPlay(_files: string[], opts: GlobalOptions): Promise<number> {
  refuseRoot(opts);
  failWith(new SpeakerdError(ErrorCodes.BACKEND_UNAVAILABLE, '"speakerd play" is not available yet'));
}
