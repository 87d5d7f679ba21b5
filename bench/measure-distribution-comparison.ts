import type { BenchContext } from './bench-context.js';
import { checkEvenSplitValues } from './check-even-split-values.js';
import { withDistributionService } from './distribution-service-process.js';
import { describeCatchUp, type CatchUpRun } from './measure-catch-up.js';
import { measureEndToEnd } from './measure-end-to-end.js';

/** The rule the example service is started with: the built-in split's, so that both runs must write the same keys. */
export const SERVICE_RULE = 'even';

/** A run with the distribution service, and the CPU the service used over it. */
export type ServiceRun = CatchUpRun & { serviceCpuSeconds: number };

/** End-to-end runs with the built-in even split and with the example service, in the order they ran. */
export interface DistributionComparisonRuns {
  builtIn: CatchUpRun[];
  service: ServiceRun[];
}

/**
 * The end-to-end measurement (the same committed COPY) with the built-in even split and with the example
 * distribution service (`--rule even`, a child process on loopback) as the consumer's budget rule, alternated
 * (built-in, service, built-in, …) so that drift hits both alike. After each service run, every key must be
 * exactly what the built-in split writes (value and expiry), compared row by row with the table.
 */
export async function measureDistributionComparison(context: BenchContext, samples: number): Promise<DistributionComparisonRuns> {
  context.log(`starting the example distribution service, rule ${SERVICE_RULE}`);
  return withDistributionService(SERVICE_RULE, async (service) => {
    const runs: DistributionComparisonRuns = { builtIn: [], service: [] };
    for (let sample = 1; sample <= samples; sample++) {
      const builtIn = await measureEndToEnd(context, { purpose: 'builtin' });
      runs.builtIn.push(builtIn);
      context.log(`end to end, built-in even split, ${sample}/${samples}: ${describeCatchUp(builtIn)}`);

      const cpuBefore = service.child.cpuSeconds();
      let cpuAfter = cpuBefore;
      let checked = 0;
      const run = await measureEndToEnd(context, {
        purpose: 'service',
        consumerEnv: { BUDGET_CDC_DISTRIBUTION: service.url },
        check: async (client, keyPrefix) => {
          // Read before the check: the service is idle from here on, and the check is not part of the run.
          cpuAfter = service.child.cpuSeconds();
          checked = await checkEvenSplitValues(client, context.redis, keyPrefix);
          if (checked !== context.rows) throw new Error(`${checked} rows in jobs after a load of ${context.rows}`);
        },
      });
      const serviceRun: ServiceRun = { ...run, serviceCpuSeconds: cpuAfter - cpuBefore };
      runs.service.push(serviceRun);
      context.log(
        `end to end, distribution service (${SERVICE_RULE}), ${sample}/${samples}: ${describeCatchUp(run)}, ` +
          `service CPU ${serviceRun.serviceCpuSeconds.toFixed(2)} s; ${checked.toLocaleString('en-US')} keys equal to the built-in split's`,
      );
    }
    return runs;
  });
}
