/**
 * The exit codes of the `mmapvec` command, in one place: 0 success, 1 problems found by
 * `verify`, 2 a usage error, then one per library error code (so a script can tell a locked
 * vec from a damaged one), then the command's own: 70 a bug, 141 the reader of the output went
 * away (128 + SIGPIPE, what the shell shows for `yes | head`: an export cut short is not a
 * success to `set -o pipefail`). Stable: codes are only ever added.
 */
import type { ErrorCode } from '../errors.js'

/** Codes of the command itself, beside the library's. */
export type CliCode = 'OK' | 'PROBLEMS' | 'USAGE' | 'INTERNAL' | 'PIPE'

export const EXIT_CODES = {
  OK: 0,
  PROBLEMS: 1,
  USAGE: 2,
  ELOCKED: 3,
  EEXIST: 4,
  ENOENT: 5,
  EFORMAT: 6,
  ESCHEMA: 7,
  EVERSION: 8,
  EARCH: 9,
  ECLOSED: 10,
  EREADONLY: 11,
  ERANGE: 12,
  ENOSPC: 13,
  EINVAL: 14,
  EACCES: 15,
  EIO: 16,
  EDEPENDENCY: 17,
  INTERNAL: 70,
  PIPE: 141,
} as const satisfies Record<ErrorCode | CliCode, number>

const MEANING: Record<keyof typeof EXIT_CODES, string> = {
  OK: 'success',
  PROBLEMS: 'verify found problems',
  USAGE: 'usage error (unknown command or option, missing argument)',
  ELOCKED: 'ELOCKED: the vec is locked by another process (verify: another process kept changing it)',
  EEXIST: 'EEXIST: the import target exists',
  ENOENT: 'ENOENT: no vec (or input file) at the path',
  EFORMAT: 'EFORMAT: not a vec, or damaged',
  ESCHEMA: 'ESCHEMA: schema mismatch',
  EVERSION: 'EVERSION: application version mismatch',
  EARCH: 'EARCH: written on a machine of the other byte order',
  ECLOSED: 'ECLOSED: the vec was closed',
  EREADONLY: 'EREADONLY: a change to a read-only vec',
  ERANGE: 'ERANGE: an index or size out of range',
  ENOSPC: 'ENOSPC: the disk is full',
  EINVAL: 'EINVAL: a bad schema, value or input row',
  EACCES: 'EACCES: permission denied',
  EIO: 'EIO: another I/O failure',
  EDEPENDENCY: 'EDEPENDENCY: an optional dependency is missing (apache-arrow for --format arrow)',
  INTERNAL: 'an unexpected internal error (a bug: please report it)',
  PIPE: 'the reader of the output (a pipe) went away before all of it was written, as for a command ended by SIGPIPE',
}

/** The table as `--help` prints it. */
export function exitCodeHelp(): string {
  return Object.entries(EXIT_CODES)
    .map(([k, n]) => `  ${String(n).padStart(3)}  ${MEANING[k as keyof typeof EXIT_CODES]}`)
    .join('\n')
}
