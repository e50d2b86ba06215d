import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '@speakerd/plugin-sdk';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) {
    chmodSync(d, 0o755);
    rmSync(d, { recursive: true, force: true });
  }
  dirs = [];
});
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'speakerd-sdk-files-'));
  dirs.push(d);
  return d;
}

describe('writeFileAtomic', () => {
  it('writes the file with mode 0644 (before the umask) and leaves no temporary file', () => {
    const d = dir();
    const f = join(d, 'a.sdp');
    writeFileAtomic(f, 'v=0\r\n');
    expect(readFileSync(f, 'utf8')).toBe('v=0\r\n');
    expect(lstatSync(f).mode & 0o777).toBe(0o644 & ~process.umask());
    writeFileAtomic(f, Buffer.from('second'));
    expect(readFileSync(f, 'utf8')).toBe('second');
    expect(readdirSync(d)).toEqual(['a.sdp']);
  });

  it('never opens what is planted at its temporary name (a symlink or a file): it takes another name', () => {
    const d = dir();
    const victim = join(d, 'victim');
    writeFileSync(victim, 'precious');
    const f = join(d, 'a.sdp');
    const names = ['aaaa', 'bbbb', 'cccc'];
    symlinkSync(victim, join(d, '.a.sdp.aaaa.tmp'));
    writeFileSync(join(d, '.a.sdp.bbbb.tmp'), 'someone else');
    writeFileAtomic(f, 'mine', { tempSuffix: () => names.shift()! });
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readFileSync(join(d, '.a.sdp.bbbb.tmp'), 'utf8')).toBe('someone else');
    expect(lstatSync(join(d, '.a.sdp.aaaa.tmp')).isSymbolicLink()).toBe(true);
    expect(readFileSync(f, 'utf8')).toBe('mine');
    expect(names).toEqual([]); // the third name was used
    expect(readdirSync(d).sort()).toEqual(['.a.sdp.aaaa.tmp', '.a.sdp.bbbb.tmp', 'a.sdp', 'victim']);
  });

  it('replaces a symlink at the destination instead of writing through it', () => {
    const d = dir();
    const victim = join(d, 'victim');
    writeFileSync(victim, 'precious');
    const f = join(d, 'a.sdp');
    symlinkSync(victim, f);
    writeFileAtomic(f, 'mine');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(f).isSymbolicLink()).toBe(false);
    expect(readFileSync(f, 'utf8')).toBe('mine');
  });

  it('gives up after `attempts` names that all exist (EEXIST), touching none of them', () => {
    const d = dir();
    symlinkSync(join(d, 'victim'), join(d, '.a.sdp.same.tmp'));
    expect(() => writeFileAtomic(join(d, 'a.sdp'), 'x', { tempSuffix: () => 'same', attempts: 3 })).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    expect(readdirSync(d)).toEqual(['.a.sdp.same.tmp']);
  });

  it('removes its temporary file when the rename fails, and leaves the destination alone', () => {
    const d = dir();
    // a non-empty directory at the destination: rename(file, dir) fails (EISDIR)
    const target = join(d, 'sub');
    mkdirSync(target);
    writeFileSync(join(target, 'inside'), 'i');
    expect(() => writeFileAtomic(target, 'x')).toThrow(expect.objectContaining({ code: 'EISDIR' }));
    expect(readdirSync(d)).toEqual(['sub']);
    expect(readFileSync(join(target, 'inside'), 'utf8')).toBe('i');
  });

  it('a missing directory is an error and leaves nothing behind', () => {
    const d = dir();
    const f = join(d, 'missing', 'a.sdp');
    expect(() => writeFileAtomic(f, 'x')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(readdirSync(d)).toEqual([]);
  });
});
