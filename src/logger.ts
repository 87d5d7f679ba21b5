import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

// pino-pretty is loaded only for a terminal: a consumer logging JSON (the usual case) saves its memory.
const require = createRequire(import.meta.url);

export type { Logger } from 'pino';

/**
 * The process's root logger, on stderr (stdout carries command output such as `status --json`):
 * JSON lines for machines, readable lines when stderr is a terminal. Scope it with `.child({ component })`.
 */
export function makeLogger(level: string, terminal = process.stderr.isTTY === true): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (terminal) {
    const pretty = require('pino-pretty') as typeof PinoPretty;
    return pino(options, pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid' }));
  }
  return pino(options, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything, for library use and tests that do not look at logs. */
export function makeSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
