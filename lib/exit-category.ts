/**
 * What kind of failure an error is. Each error class a script can end with says which, where it is
 * defined (`readonly exitCategory = "timeout"`); `exitCodeFor` in lib/cli/exit-codes.ts turns the
 * kind into the one exit code every script uses for it. A type only: no module depends on lib/cli.
 */
export type ExitCategory =
  /** Bad flags or values: nothing was sent or written. */
  | "usage"
  /** The device (over HTTP) or the broker could not be reached, or the broker refused us. */
  | "unreachable"
  | "wrongKey"
  | "deviceError"
  | "stackOrDatabase"
  /** Nothing came back (a reply, the device online) in time. */
  | "timeout"
  | "notFound";
