import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Every metric src/ops/consumer-metrics.ts (and distribution-metrics.ts, which it calls) registers has a row in
// docs/operations.md's metrics table (two were missing: rows_applied_total and transactions_applied_total). The
// names are read from the source, so a new metric without a row fails here.

const METRIC_SOURCES = ['consumer-metrics.ts', 'distribution-metrics.ts'];
const source = METRIC_SOURCES.map((file) => readFileSync(new URL(`../../src/ops/${file}`, import.meta.url), 'utf8')).join('\n');
const operations = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
const DEFINED = /(?:counter|gauge|optionalGauge)\(\s*'([a-z_]+)'|PREFIX \+ '([a-z_]+)'/g;
/** 31 metrics were registered when this test was written; fewer names found means the pattern above missed some. */
const KNOWN_METRICS_AT_LEAST = 31;

describe('the metrics table of docs/operations.md', () => {
  const names = [...new Set([...source.matchAll(DEFINED)].map((match) => `budget_cdc_${match[1] ?? match[2]}`))];

  it('has a row for every metric the consumer registers', () => {
    expect(names.length).toBeGreaterThanOrEqual(KNOWN_METRICS_AT_LEAST);
    const tableRows = operations.split('\n').filter((line) => line.startsWith('| `budget_cdc_'));
    const undocumented = names.filter((name) => !tableRows.some((row) => row.includes(`\`${name}`)));
    expect(undocumented).toEqual([]);
  });
});
