import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { makeSilentLogger } from '../logger.js';
import { connectRedis } from '../sink/redis-client.js';
import { RedisStore } from '../sink/redis-store.js';
import { EXIT_OK } from './exit-codes.js';

/** `budget-cdc dead-letters [--limit N] [--json]`: the rows set aside, newest first. */
export async function deadLettersCommand(config: Config, json: boolean, limitText: string): Promise<number> {
  const limit = /^[1-9]\d*$/.test(limitText) ? Number(limitText) : NaN;
  if (!Number.isSafeInteger(limit)) throw new ConfigError('--limit', `--limit must be a positive integer, got "${limitText}"`);
  const redis = await connectRedis(config, makeSilentLogger());
  try {
    const entries = await new RedisStore(redis, config.keyPrefix, config.slotName).readDeadLetters(limit);
    if (json) process.stdout.write(JSON.stringify(entries.map((e) => JSON.parse(e) as unknown)) + '\n');
    else process.stdout.write(entries.length === 0 ? 'no dead letters\n' : entries.join('\n') + '\n');
    return EXIT_OK;
  } finally {
    redis.disconnect();
  }
}
