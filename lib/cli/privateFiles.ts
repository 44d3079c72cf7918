/**
 * Files that hold secrets (PSK files, private keys), read and written as ssh treats its private
 * keys: written with mode 0600 from the start and never through an existing file or symlink;
 * read only when nobody but the owner may read or change them.
 */
import { closeSync, constants as fsConstants, fchmodSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from '../crypto/random.js';
import { CliError } from './args.js';

/** The mode bits, as `chmod` writes them (`0644`). */
function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Checks an identity: UTF-8, 1 to 1,024 bytes, no control characters, no surrounding spaces. */
/**
 * Reads a file whose permissions allow its owner only (`what` names it in errors: "PSK file",
 * "private key file"); the buffer it returns holds the file's bytes (the caller zero-fills it).
 */
export function readPrivateFile(path: string, what: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | (fsConstants.O_NOCTTY ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read the ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message)}`, { cause: e });
  }
  try {
    const st = fstatSync(fd); // the file we opened, not whatever the path names now
    if (!st.isFile()) throw new CliError(`the ${what} ${path} is not a regular file`);
    // As ssh does for a private key: refuse a key that anyone but its owner may read or change.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new CliError(
        `permissions ${octal(st.mode)} for the ${what} ${path} are too open: it must be accessible by its owner only; run chmod 600 ${path}`,
      );
    }
    if (st.size > maxBytes) throw new CliError(`the ${what} ${path} is too large (${st.size} bytes)`);
    const buf = Buffer.alloc(st.size);
    let read = 0;
    while (read < buf.length) {
      const n = readSync(fd, buf, read, buf.length - read, read);
      if (n === 0) break;
      read += n;
    }
    return buf.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/** Writes `content` to `path` with mode 0600: a new file, or (force) a new file renamed over it. */
export function writePrivateFile(path: string, content: Buffer, force: boolean): void {
  const target = force ? join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`) : path;
  let fd: number;
  try {
    // O_EXCL: never write through an existing file or symlink; 0600 from the start.
    fd = openSync(target, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CliError(`${path} already exists: choose another file, or replace it with --force`);
    throw new CliError(`cannot create ${path}: ${code === 'ENOENT' ? 'no such directory' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message)}`, { cause: e });
  }
  try {
    // The umask can only remove bits; some file systems ignore the creation mode: set it again.
    if (process.platform !== 'win32') {
      try {
        fchmodSync(fd, 0o600);
      } catch {
        // best effort; the permission check when the file is read is what matters
      }
    }
    let written = 0;
    while (written < content.length) written += writeSync(fd, content, written, content.length - written);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(target, { force: true });
    throw new CliError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  closeSync(fd);
  if (target !== path) {
    try {
      renameSync(target, path);
    } catch (e) {
      rmSync(target, { force: true });
      throw new CliError(`cannot replace ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
  }
}

