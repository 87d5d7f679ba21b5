#!/usr/bin/env node
// An example distribution service for budget-cdc (docs/distribution-protocol.md): POST a batch of jobs, get
// each job's daily amounts back. Node 20 built-ins only, so a team can copy this folder and put its own rule
// in place of rules.mjs. Run: node server.mjs --port 8080 --rule weekday

import { realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { FaultRequestError, corruptResults, makeFaultList, parseFault } from './fault-injection.mjs';
import { RULE_NAMES, distributeJob, formatCents, parseBudgetCents } from './rules.mjs';

/** The most jobs one request may carry; budget-cdc sends at most this many (the protocol's bound). */
export const MAX_JOBS_PER_REQUEST = 500;
/** The largest request body read, in bytes: 500 jobs take well under 100 KiB. */
const MAX_BODY_BYTES = 1024 * 1024;
const SECOND = 1000;
// Longer than any client's idle timeout (undici's is 4 s), so that the client, not the server, closes an idle
// connection: a server closing one while the client reuses it would fail a request for nothing.
const KEEP_ALIVE_TIMEOUT_MS = 65 * SECOND;
const DEFAULT_PORT = 8080;
const DEFAULT_HOST = '127.0.0.1';

const USAGE = `Usage: node server.mjs [--port N] [--host ADDRESS] [--rule even|weekday] [--faults]

  --port N        port to listen on; 0 picks a free one (env DISTRIBUTE_PORT; default ${DEFAULT_PORT})
  --host ADDRESS  address to listen on (env DISTRIBUTE_HOST; default ${DEFAULT_HOST})
  --rule NAME     even: budget-cdc's exact split; weekday: Mon-Fri weigh 2, Sat-Sun 1 (env DISTRIBUTE_RULE; default even)
  --faults        TEST ONLY: enable POST /faults to inject failures (env DISTRIBUTE_FAULTS=1; default off)

Flags win over the environment.`;

/** Settings from flags, then the environment, then defaults; exits with the usage text when one is wrong. */
function readConfig(argv, env) {
  let flags;
  try {
    flags = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        rule: { type: 'string' },
        faults: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (error) {
    return usageError(error.message);
  }
  if (flags.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const portText = flags.port ?? env.DISTRIBUTE_PORT ?? String(DEFAULT_PORT);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 0 && port <= 65_535)) return usageError(`the port must be an integer from 0 to 65535, got ${JSON.stringify(portText)}`);
  const rule = flags.rule ?? env.DISTRIBUTE_RULE ?? 'even';
  if (!RULE_NAMES.includes(rule)) return usageError(`the rule must be one of ${RULE_NAMES.join(', ')}, got ${JSON.stringify(rule)}`);
  return {
    port,
    host: flags.host ?? env.DISTRIBUTE_HOST ?? DEFAULT_HOST,
    rule,
    faults: flags.faults === true || env.DISTRIBUTE_FAULTS === '1',
  };
}

function usageError(message) {
  console.error(`distribute-budget-service: ${message}\n\n${USAGE}`);
  process.exit(2);
}

/** A request the service refuses as a whole: `status` and the reason sent back as {"error": reason}. */
class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'RequestError';
    this.status = status;
  }
}

/** The body of a request, parsed as JSON; RequestError 413 past MAX_BODY_BYTES, 400 when it is not JSON. */
async function readJsonBody(request) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new RequestError(413, `the request body is over ${MAX_BODY_BYTES} bytes: send at most ${MAX_JOBS_PER_REQUEST} jobs`);
    chunks.push(chunk);
  }
  const text = chunks.map((chunk) => chunk.toString('utf8')).join('');
  try {
    return JSON.parse(text);
  } catch {
    throw new RequestError(400, 'the request body is not JSON');
  }
}

/** The jobs of a distribution request; RequestError when the batch as a whole cannot be answered. */
function readJobs(body) {
  if (typeof body !== 'object' || body === null || !Array.isArray(body.jobs))
    throw new RequestError(400, 'the body must be {"jobs": [...]}');
  const { jobs } = body;
  if (jobs.length > MAX_JOBS_PER_REQUEST)
    throw new RequestError(413, `${jobs.length} jobs in one request: send at most ${MAX_JOBS_PER_REQUEST}`);
  const jobIds = new Set();
  for (const [index, job] of jobs.entries()) {
    // Without a readable job_id a per-job refusal could not say which job it refuses.
    if (typeof job !== 'object' || job === null || typeof job.job_id !== 'string' || job.job_id === '') {
      throw new RequestError(400, `jobs[${index}] has no job_id string`);
    }
    // Results come back in any order, matched by job_id: two jobs with one id could not be told apart.
    if (jobIds.has(job.job_id)) throw new RequestError(400, `job_id ${JSON.stringify(job.job_id)} appears twice in one request`);
    jobIds.add(job.job_id);
  }
  return { jobs, jobIds };
}

const addCent = (amount) => formatCents(parseBudgetCents(amount) + 1n);

/** The HTTP server: POST / (or /distribute), GET /healthz, and /faults when `config.faults` is on. */
export function makeDistributionServer(config) {
  const faults = config.faults ? makeFaultList() : undefined;
  // Stalled answers waiting for their timer, answered at once on shutdown so that it does not wait for them.
  const stalled = new Set();
  let stopping = false;

  function send(response, status, body) {
    // While stopping, each answer closes its connection: server.close() waits for kept-alive ones otherwise.
    response.writeHead(status, { 'content-type': 'application/json', ...(stopping ? { connection: 'close' } : {}) });
    response.end(body);
  }
  const sendJson = (response, status, body) => send(response, status, JSON.stringify(body));

  async function distribute(request, response) {
    const { jobs, jobIds } = readJobs(await readJsonBody(request));
    const fault = faults?.take(jobIds);
    const answer = () => {
      let results = jobs.map((job) => distributeJob(job, config.rule));
      if (fault?.mode === 'wrong-sum' || fault?.mode === 'wrong-count') results = corruptResults(results, fault, addCent);
      sendJson(response, 200, { results });
    };
    switch (fault?.mode) {
      case '500':
        return sendJson(response, 500, { error: 'injected fault: 500' });
      case 'drop':
        return void request.socket.destroy();
      case 'malformed':
        return send(response, 200, '{"results":[{"job_id":');
      case 'stall': {
        const finish = () => {
          clearTimeout(timer);
          stalled.delete(finish);
          if (!response.destroyed) answer();
        };
        const timer = setTimeout(finish, fault.stallMs);
        stalled.add(finish);
        // The client gave up (its timeout): nothing to answer.
        response.once('close', () => {
          clearTimeout(timer);
          stalled.delete(finish);
        });
        return;
      }
      default:
        return answer();
    }
  }

  async function handleFaults(request, response) {
    if (request.method === 'GET') return sendJson(response, 200, { armed: faults.list() });
    if (request.method === 'DELETE') {
      faults.clear();
      return sendJson(response, 200, { armed: [] });
    }
    if (request.method !== 'POST') throw new RequestError(405, 'use GET, POST or DELETE on /faults');
    try {
      faults.arm(parseFault(await readJsonBody(request)));
    } catch (error) {
      if (error instanceof FaultRequestError) throw new RequestError(400, error.message);
      throw error;
    }
    return sendJson(response, 200, { armed: faults.list() });
  }

  async function route(request, response) {
    const path = new URL(request.url ?? '/', 'http://service').pathname;
    if (path === '/' || path === '/distribute') {
      if (request.method !== 'POST') throw new RequestError(405, `use POST on ${path}`);
      return distribute(request, response);
    }
    if (path === '/healthz' && request.method === 'GET')
      return sendJson(response, 200, { rule: config.rule, faults: faults !== undefined });
    if (path === '/faults' && faults !== undefined) return handleFaults(request, response);
    throw new RequestError(404, `no ${request.method} ${path} here`);
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error) => {
      if (response.headersSent || response.destroyed) return;
      if (error instanceof RequestError) return sendJson(response, error.status, { error: error.message });
      console.error('distribute-budget-service: request failed:', error);
      sendJson(response, 500, { error: 'internal error: see the service log' });
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Above keepAliveTimeout, so that the header timer of a kept-alive connection never ends it before the idle timer.
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + SECOND;
  /** Stops accepting connections, answers stalled requests now, and closes each connection once idle. */
  server.stop = () => {
    stopping = true;
    server.close();
    server.closeIdleConnections();
    for (const finish of [...stalled]) finish();
  };
  return server;
}

/** Starts the service and stops it on SIGTERM or SIGINT: in-flight requests are answered first; a second signal exits at once. */
function main() {
  const config = readConfig(process.argv.slice(2), process.env);
  const server = makeDistributionServer(config);
  server.on('error', (error) => {
    console.error(`distribute-budget-service: cannot listen on ${config.host}:${config.port}: ${error.message}`);
    process.exit(1);
  });
  server.listen(config.port, config.host, () => {
    const { port } = server.address();
    console.log(
      `distribute-budget-service: rule=${config.rule} listening on http://${config.host}:${port}/${config.faults ? ' (TEST ONLY fault injection on: POST /faults)' : ''}`,
    );
  });
  let signalled = false;
  const stop = (signal) => {
    if (signalled) process.exit(1);
    signalled = true;
    console.log(`distribute-budget-service: ${signal}: answering in-flight requests, then exiting`);
    server.stop();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// Run when started as a program, not when imported (a test or another service can import makeDistributionServer).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) main();
