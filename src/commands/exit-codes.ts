// The exit codes every command shares; status, inspect and resync add their own (see --help).

export const EXIT_OK = 0;
/** An unreachable server, a failed load, a permanent error of `run`. */
export const EXIT_FAILURE = 1;
/** A usage or configuration error (a ConfigError): the message names the flag or variable. */
export const EXIT_USAGE = 2;
