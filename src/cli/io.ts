/** Where a command writes; tests pass buffers, the binary passes the process streams. */
export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  readStdin?: () => Promise<string>;
}

/** A user error: bad flag value, unreadable input. Printed without a stack trace, exit 2. */
export class UsageError extends Error {}

export const EXIT = { ok: 0, findings: 1, usage: 2 } as const;
