// npm run torture [-- --rows N --kills K --max-kill-interval-ms MS --cluster --streaming]
// kill -9 of the consumer at random moments of a large COPY while single-row changes stream, then Redis
// is compared with the table. Prints kills, rows, missing, wrong and later-than-allowed expiries. With
// --cluster, into a throwaway Redis Cluster of 3 masters and 3 replicas instead of one Redis. With --streaming, the
// server's logical_decoding_work_mem is the least there is (64 kB): the COPY, and every transaction of more than a
// few hundred rows, is streamed while it runs (protocol 2), so the kills land while it is spooled and replayed.
import { parseArgs } from 'node:util';
import { runCrashScenario } from '../test/support/crash-scenario.js';
import { startPostgres } from '../test/support/postgres-server.js';
import { startRedisCluster, type RedisCluster } from '../test/support/redis-cluster.js';
import { startRedis } from '../test/support/redis-server.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    kills: { type: 'string', default: '20' },
    'max-kill-interval-ms': { type: 'string', default: '4000' },
    cluster: { type: 'boolean', default: false },
    streaming: { type: 'boolean', default: false },
  },
});
const [postgres, redis] = await Promise.all([
  startPostgres(values.streaming ? { extraSettings: { logical_decoding_work_mem: '64kB' } } : {}),
  startRedis(),
]);
let cluster: RedisCluster | undefined;
try {
  if (values.cluster) cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  const result = await runCrashScenario({
    adminUrl: postgres.url,
    redisUrl: redis.url,
    redisClusterNodes: cluster?.seeds,
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
  await Promise.all([postgres.stop(), redis.stop(), cluster?.stop()]);
}
