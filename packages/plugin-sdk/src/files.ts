import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** Permission bits of the new file, before the umask (default 0o644: receivers and other users may read it). */
  mode?: number;
  /** How many temporary names are tried before giving up (default 16): a name that exists is never reused. */
  attempts?: number;
  /** The random part of the temporary name (default 8 random bytes in hex). For tests. */
  tempSuffix?: () => string;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const O_CLOEXEC = (constants as { O_CLOEXEC?: number }).O_CLOEXEC ?? 0;

/**
 * Write `data` to `file` so that nobody ever sees it half written and nothing in its directory can redirect the
 * write: the bytes go to a new temporary file in the same directory, created exclusively
 * (`O_CREAT | O_EXCL | O_NOFOLLOW`, so a file or a symlink planted at that name is never opened, let alone
 * followed), with an unpredictable name (`.<name>.<random>.tmp`); it is written, `fsync`ed, closed and renamed over
 * `file` (a rename replaces a symlink at `file` itself, it does not follow it). On any failure the temporary file
 * is removed and the error thrown; `file` is then unchanged.
 *
 * Synchronous, for small files (an SDP description, a state file). Every file speakerd writes goes through it.
 *
 * @param file - the destination path
 * @param data - the content (a string is written as UTF-8)
 * @param options - see {@link WriteFileAtomicOptions}
 * @throws the `open`, `write`, `fsync` or `rename` error (EACCES, ENOSPC, …); EEXIST only after `attempts` names
 *   that all existed
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, options: WriteFileAtomicOptions = {}): void {
  const { mode = 0o644, attempts = 16, tempSuffix = () => randomBytes(8).toString('hex') } = options;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const dir = dirname(file);
  const name = basename(file);
  let tmp = '';
  let fd = -1;
  for (let i = 0; fd < 0; i++) {
    tmp = join(dir, `.${name}.${tempSuffix()}.tmp`);
    try {
      fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    } catch (err) {
      // someone else's file (or symlink) at that name: never touch it, take another name
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i + 1 >= attempts) throw err;
    }
  }
  try {
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, file);
  } catch (err) {
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw err;
  }
}
