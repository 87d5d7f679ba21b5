import { describe, expect, it } from 'vitest';
import { judgeStatus, STATUS_EXIT, type StatusReport } from '../../src/commands/status.js';
import { formatBudgetRule, formatConsumer, formatStatus } from '../../src/commands/status-text.js';

// What `budget-cdc status` says of a distribution service that fails (issue 14), and of the budget rule Redis was
// built with, from fixed reports.

const SINCE = '2026-12-01T01:00:00.000Z';
const SERVICE = 'http://budget:***@distribution.internal:8080/distribute';
const THRESHOLDS = { httpPort: 0, httpPortIsDefault: false, httpHost: '127.0.0.1', maxLagBytes: 1024, maxLagSeconds: 300 };
const CONSUMER = 'budget-cdc host-a pid 17';

function report(overrides: Partial<Omit<StatusReport, 'health'>> = {}): Omit<StatusReport, 'health'> {
  return {
    database: { url: 'postgres://budget@db/jobs' },
    table: { replicaIdentity: 'full', missingColumns: [], inPublication: true },
    slot: {
      name: 'budget_cdc',
      exists: true,
      active: true,
      confirmedLsn: '0/16B3748',
      lagBytes: 0,
      lagSeconds: 0.1,
      retainedBytes: 4096,
      walStatus: 'reserved',
      safeWalSizeBytes: null,
    },
    redis: {
      url: 'redis://127.0.0.1:6379',
      reachable: true,
      error: null,
      checkpoint: '0/16B3748#-1',
      deadLetters: 0,
      eviction: { policy: 'noeviction', evictedKeys: 0 },
      rebuilds: { counts: { 'new-slot': 1 }, last: undefined, distribution: SERVICE },
    },
    consumers: [{ process: CONSUMER, role: 'active', at: SINCE }],
    budgetRule: { recorded: SERVICE, configured: SERVICE },
    ...overrides,
  };
}

const unavailable = { since: SINCE, reason: 'no answer within 10 s' };

describe('status: a consumer whose distribution service is unavailable', () => {
  it('says so on the consumer line, with since when and why', () => {
    expect(formatConsumer({ process: CONSUMER, role: 'active', at: SINCE, distributionUnavailable: unavailable })).toBe(
      `active ${CONSUMER} (distribution service unavailable since ${SINCE}: no answer within 10 s)`,
    );
  });

  it('keeps the FAILING text as it was, and shows both when both hold', () => {
    const failing = { consecutiveFailures: 2, lastError: 'ECONNREFUSED', since: SINCE };
    expect(formatConsumer({ process: CONSUMER, role: 'active', at: SINCE, failing })).toBe(
      `active ${CONSUMER} (FAILING: failed 2 times in a row since ${SINCE}: ECONNREFUSED)`,
    );
    expect(formatConsumer({ process: CONSUMER, role: 'active', at: SINCE, failing, distributionUnavailable: unavailable })).toBe(
      `active ${CONSUMER} (FAILING: failed 2 times in a row since ${SINCE}: ECONNREFUSED; ` +
        `distribution service unavailable since ${SINCE}: no answer within 10 s)`,
    );
  });

  it('is unhealthy with exit 7, the code of a consumer that keeps failing', () => {
    const consumers = [{ process: CONSUMER, role: 'active' as const, at: SINCE, distributionUnavailable: unavailable }];
    const health = judgeStatus(report({ consumers }), 'budget_cdc', THRESHOLDS);
    expect(health.exitCode).toBe(STATUS_EXIT.consumerFailing);
    expect(health.problems).toEqual([`consumer ${CONSUMER}: distribution service unavailable since ${SINCE}: no answer within 10 s`]);
  });

  it('is healthy when the service answers', () => {
    expect(judgeStatus(report(), 'budget_cdc', THRESHOLDS)).toEqual({ exitCode: 0, problems: [], maxLagBytes: 1024, maxLagSeconds: 300 });
  });
});

describe('status: the budget rule', () => {
  it('shows the rule the last rebuild recorded, and that changing it needs a resync', () => {
    expect(formatBudgetRule({ recorded: 'even', configured: 'even' })).toBe(
      'budget rule: even (recorded by the last rebuild; changing it needs "budget-cdc resync")',
    );
  });

  it("says when this command's setting differs: a consumer with it refuses to start", () => {
    expect(formatBudgetRule({ recorded: 'even', configured: SERVICE })).toBe(
      `budget rule: even (recorded by the last rebuild), but this setting is ${SERVICE} (--distribution / BUDGET_CDC_DISTRIBUTION): ` +
        'a consumer with it refuses to start until "budget-cdc resync" asks for a rebuild',
    );
  });

  it('says that no rule binds without a checkpoint', () => {
    expect(formatBudgetRule({ recorded: null, configured: 'even' })).toBe(
      "budget rule: none in force (no checkpoint): the next rebuild uses the consumer's --distribution setting (here even) and records it",
    );
  });

  it('is a line of the text output while Redis answers, and left out when it does not', () => {
    const healthy = { exitCode: 0, problems: [], maxLagBytes: 1024, maxLagSeconds: 300 };
    const text = formatStatus({ ...report(), health: healthy });
    expect(text.split('\n')).toContain(`budget rule: ${SERVICE} (recorded by the last rebuild; changing it needs "budget-cdc resync")`);
    const base = report();
    const down = {
      ...base.redis,
      reachable: false,
      error: 'ECONNREFUSED',
      checkpoint: null,
      rebuilds: null,
      eviction: null,
      deadLetters: null,
    };
    const unreachable = formatStatus({ ...base, redis: down, budgetRule: { recorded: null, configured: SERVICE }, health: healthy });
    expect(unreachable).not.toContain('budget rule');
  });
});
