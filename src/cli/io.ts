// Where a command's output goes: stdout and stderr of the process, or a test's buffers.
export interface Io {
  out(text: string): void;
  err(text: string): void;
}
