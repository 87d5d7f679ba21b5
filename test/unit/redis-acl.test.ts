import { describe, expect, it } from 'vitest';
import { formatRedisAclCommand } from '../../src/commands/redis-acl.js';
import { loadRedisAclConfig } from '../../src/config.js';

// The ACL SETUSER line per topology, and the settings it is made from. test/integration/redis-acl.test.ts applies
// the single-Redis line to a real server and runs the pipeline under it.

const BASE =
  '+multi +exec +set +del +lpush +ltrim +get +exists +unlink +scan +lrange +llen +hincrby +hset +hgetall +pttl +pexpiretime +ping +info +select +client|setname +client|list +client|kill';

describe('budget-cdc redis-acl line', () => {
  it('on one Redis, without a password: the default user, prefix and commands, no password rule', () => {
    expect(formatRedisAclCommand(loadRedisAclConfig({}, {}))).toBe(
      `ACL SETUSER budget_cdc reset on ~job:* ~budget-cdc:* resetchannels -@all ${BASE}`,
    );
  });

  it('adds WAIT with replicas to wait for, ROLE with Sentinels, the CLUSTER commands and ASKING on a cluster', () => {
    const line = formatRedisAclCommand(
      loadRedisAclConfig({ redisMinReplicas: '1', redisClusterNodes: '10.0.0.1:7000' }, { REDIS_SENTINELS: '' }),
    );
    expect(line).toBe(
      `ACL SETUSER budget_cdc reset on ~job:* ~budget-cdc:* resetchannels -@all ${BASE} +wait +cluster|slots +cluster|info +cluster|nodes +asking`,
    );
    expect(formatRedisAclCommand(loadRedisAclConfig({}, { REDIS_SENTINELS: 's1:26379' }))).toMatch(/ \+role$/);
  });

  it('matches the prefix literally (glob characters escaped) and quotes what redis-cli would split', () => {
    const line = formatRedisAclCommand(loadRedisAclConfig({ keyPrefix: 'my job[1]*:', redisAclUser: 'cdc.prod' }, {}));
    expect(line).toContain('ACL SETUSER cdc.prod reset on "~my job\\\\[1\\\\]\\\\*:*" ~budget-cdc:*');
  });

  it('takes the password from BUDGET_CDC_REDIS_PASSWORD as its SHA-256, never as text', () => {
    const line = formatRedisAclCommand(loadRedisAclConfig({}, { BUDGET_CDC_REDIS_PASSWORD: 'secret' }));
    expect(line).toContain(' on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~job:*');
    expect(line).not.toContain('secret');
  });

  it('refuses the default user, a name with a space, and a prefix that covers budget-cdc:*', () => {
    expect(() => loadRedisAclConfig({ redisAclUser: 'default' }, {})).toThrow(/--user default would take every right/);
    expect(() => loadRedisAclConfig({ redisAclUser: 'a b' }, {})).toThrow(/not a usable Redis user name/);
    expect(() => loadRedisAclConfig({ keyPrefix: 'budget' }, {})).toThrow(/would cover budget-cdc's own keys/);
  });
});
