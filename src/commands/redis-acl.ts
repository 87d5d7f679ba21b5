import { createHash } from 'node:crypto';
import type { RedisAclConfig } from '../config.js';
import { INTERNAL_KEY_PREFIX } from '../config.js';
import { EXIT_OK } from './exit-codes.js';

// `budget-cdc redis-acl` prints the ACL SETUSER line of a Redis user that can do what budget-cdc does and
// nothing else. The command list is what src/sink, src/ops and src/commands send (and ioredis on connect);
// test/integration/redis-acl.test.ts runs the pipeline and the commands as that user and finds ACL LOG empty.

/** Sent on every topology: writes, checkpoint, dead letters, rebuild records, status, inspect, resync. */
const COMMANDS = [
  // Batches of changes and the checkpoint that covers them, in one MULTI/EXEC.
  ...['multi', 'exec', 'set', 'del', 'lpush', 'ltrim'],
  // Reads of the checkpoint, the rebuild records and the dead letters; TRUNCATE and resync remove keys by SCAN.
  ...['get', 'exists', 'unlink', 'scan', 'lrange', 'llen', 'hincrby', 'hset', 'hgetall'],
  // inspect shows a key's TTL.
  ...['pttl', 'pexpiretime'],
  // INFO: ioredis's ready check and the eviction check; SELECT: a REDIS_URL database other than 0.
  ...['ping', 'info', 'select'],
  // The writer's connection name, and on takeover the fencing of a previous owner's writer (CLIENT LIST and KILL).
  // Not CLIENT SETINFO, which ioredis sends on connect and whose refusal it ignores: Redis before 7.2 does not
  // know it, and refuses the whole ACL SETUSER line that names it.
  ...['client|setname', 'client|list', 'client|kill'],
] as const;
/** --redis-min-replicas above 0: each batch waits for the replicas. */
const REPLICA_COMMANDS = ['wait'] as const;
/** With Sentinels: the master named by the Sentinels is asked whether it is still the master. */
const SENTINEL_COMMANDS = ['role'] as const;
/** On a Redis Cluster: the slot map (ioredis reads CLUSTER SLOTS, INFO and NODES) and ASK redirections. */
const CLUSTER_COMMANDS = ['cluster|slots', 'cluster|info', 'cluster|nodes', 'asking'] as const;

/** Written where no password was given: a user without a password cannot log in until one is set. */
const NO_PASSWORD_NOTE =
  'no password given: the user cannot log in until it has one; set BUDGET_CDC_REDIS_PASSWORD or pass --redis-password-file PATH ' +
  'to print its SHA-256 (#…) in the line';

/** The rules after `ACL SETUSER <user>`: all rights reset first, so that applying the line again gives exactly these. */
export function redisAclRules(config: RedisAclConfig): string[] {
  const commands = [
    ...COMMANDS,
    ...(config.minReplicas > 0 ? REPLICA_COMMANDS : []),
    ...(config.sentinels ? SENTINEL_COMMANDS : []),
    ...(config.cluster ? CLUSTER_COMMANDS : []),
  ];
  return [
    'reset',
    'on',
    // The hash, not the password: the line may be kept in a file, a ticket or a terminal's scrollback.
    ...(config.password === undefined ? [] : [`#${createHash('sha256').update(config.password).digest('hex')}`]),
    `~${escapeGlob(config.keyPrefix)}*`,
    `~${escapeGlob(INTERNAL_KEY_PREFIX)}*`,
    'resetchannels',
    '-@all',
    ...commands.map((command) => `+${command}`),
  ];
}

/** "ACL SETUSER budget_cdc reset on … +ping": one line, quoted where redis-cli needs it. */
export function formatRedisAclCommand(config: RedisAclConfig): string {
  return ['ACL', 'SETUSER', config.user, ...redisAclRules(config)].map(quoteForRedisCli).join(' ');
}

/** `budget-cdc redis-acl [--user NAME] [--redis-password-file PATH]`: prints the line for `redis-cli`. */
export function redisAclCommand(config: RedisAclConfig): number {
  process.stdout.write(`${formatRedisAclCommand(config)}\n`);
  if (config.password === undefined) process.stderr.write(`budget-cdc: ${NO_PASSWORD_NOTE}\n`);
  return EXIT_OK;
}

/** A key prefix is matched literally: the characters of Redis's glob patterns are escaped. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

/** redis-cli (and redis-server's own argument splitting) takes a double-quoted argument with \\ and \" escaped. */
function quoteForRedisCli(arg: string): string {
  if (arg !== '' && !/[\s"'\\]/.test(arg)) return arg;
  return `"${arg.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
}
