/**
 * A CSV load failed and nothing was loaded. `line` is the file's line number (1 is the header) when the
 * failure belongs to one line; `cause` is PostgreSQL's or the file system's error.
 */
export class LoadError extends Error {
  override name = 'LoadError';
  constructor(
    message: string,
    readonly line?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
