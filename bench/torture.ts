// npm run torture [-- --rows N --kills K --max-kill-interval-ms MS]
// kill -9 of the consumer at random moments of a large COPY while single-row changes stream, then Redis
// is compared with the table. Prints kills, rows, missing, wrong and later-than-allowed expiries.
import { parseArgs } from 'node:util';
import { runCrashScenario } from '../test/support/crash-scenario.js';
import { startPostgres } from '../test/support/postgres-server.js';
import { startRedis } from '../test/support/redis-server.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    kills: { type: 'string', default: '20' },
    'max-kill-interval-ms': { type: 'string', default: '4000' },
  },
});
const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
try {
  const result = await runCrashScenario({
    adminUrl: postgres.url,
    redisUrl: redis.url,
    rows: Number(values.rows),
    kills: Number(values.kills),
    maxKillIntervalMs: Number(values['max-kill-interval-ms']),
    log: (line) => process.stderr.write(line + '\n'),
  });
  process.stdout.write(
    `kills ${result.kills}, rows ${result.rows}, missing ${result.missing}, wrong ${result.wrong}, ` +
      `later-than-allowed expiries ${result.laterExpiry}, earlier expiries ${result.earlierExpiry}, extra keys ${result.extra}, ` +
      `${result.seconds} s\n`,
  );
  process.exitCode = result.missing + result.wrong + result.laterExpiry + result.earlierExpiry + result.extra === 0 ? 0 : 1;
} finally {
  await Promise.all([postgres.stop(), redis.stop()]);
}
