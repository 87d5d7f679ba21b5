import type { TestProject } from 'vitest/node';
import { startServices } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the shared PostgreSQL server; make a database per test file with `createTestDatabase`. */
    databaseUrl: string;
    /** URL of the shared Redis server; use a key prefix per test file. */
    redisUrl: string;
  }
}

/** Starts one PostgreSQL and one Redis for the whole run; tests read their URLs with `inject()`. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const services = await startServices();
  project.provide('databaseUrl', services.databaseUrl);
  project.provide('redisUrl', services.redisUrl);
  return async () => {
    await services.stop();
  };
}
