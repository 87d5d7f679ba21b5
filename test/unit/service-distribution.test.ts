import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS, type Job } from '../../src/budget/job.js';
import {
  MAX_JOBS_PER_REQUEST,
  MAX_REQUESTS_IN_FLIGHT,
  requestsOf,
  ServiceDistribution,
} from '../../src/distribution/service-distribution.js';
import { makeSilentLogger } from '../../src/logger.js';
import { waitFor } from '../support/wait-for.js';

// The client of a distribution service against a real HTTP server in this process, whose answers each test
// scripts: batching, requests in flight, retries of whole-batch failures, and what it tells about availability.

const CREATED_AT_MS = Date.UTC(2030, 0, 7, 10);

function job(jobId: string, budgetCents = 300, daysOnline = 3): Job {
  return { jobId, budgetCents, daysOnline, createdAtMs: CREATED_AT_MS, expiresAtMs: CREATED_AT_MS + daysOnline * DAY_MS };
}

interface WireJob {
  job_id: string;
  budget: string;
  days_online: number;
  created_at: string;
}

type Handler = (jobs: WireJob[], response: ServerResponse, request: IncomingMessage) => void;

/** Answers each job with its budget on day 0 and 0.00 on the others: correct, and not the even split. */
function frontLoaded(jobs: WireJob[], response: ServerResponse): void {
  const results = jobs.map((j) => ({ job_id: j.job_id, daily: [j.budget, ...Array<string>(j.days_online - 1).fill('0.00')] }));
  response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
}

const servers: Server[] = [];

async function serve(handler: Handler): Promise<{ url: string; requests: WireJob[][] }> {
  const requests: WireJob[][] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const { jobs } = JSON.parse(body) as { jobs: WireJob[] };
      requests.push(jobs);
      handler(jobs, response, request);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/distribute`, requests };
}

function recordingAvailability(): {
  events: string[];
  requests: Array<{ jobs: number; ok: boolean }>;
  availability: ConstructorParameters<typeof ServiceDistribution>[2];
} {
  const events: string[] = [];
  const requests: Array<{ jobs: number; ok: boolean }> = [];
  return {
    events,
    requests,
    availability: {
      unavailable: (since, reason) => events.push(`unavailable since ${since instanceof Date ? 'a date' : '?'}: ${reason}`),
      available: () => events.push('available'),
      requested: ({ jobs, ok }) => requests.push({ jobs, ok }),
    },
  };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('requestsOf', () => {
  it('cuts requests at the protocol bound and before a job_id met again', () => {
    const jobs = [...Array.from({ length: MAX_JOBS_PER_REQUEST + 2 }, (_, i) => job(`j${i}`)), job(`j${MAX_JOBS_PER_REQUEST}`)];
    const requests = requestsOf(jobs);
    expect(requests.map((r) => r.length)).toEqual([MAX_JOBS_PER_REQUEST, 2, 1]);
    expect(requests.flat()).toEqual(jobs.map((_, i) => i));
    expect(requestsOf([job('a'), job('b'), job('a'), job('a')])).toEqual([[0, 1], [2], [3]]);
  });
});

describe('ServiceDistribution', () => {
  it('sends the protocol body and returns each job checked, in the order asked, over several requests', async () => {
    const { url, requests } = await serve(frontLoaded);
    const { availability, events } = recordingAvailability();
    const service = new ServiceDistribution(url, 5_000, availability, makeSilentLogger());
    expect(service.builtIn).toBe(false);
    const jobs = Array.from({ length: 1_200 }, (_, i) => job(`j${i}`, 1000 + i, 1 + (i % 4)));
    const checks = await service.distribute(jobs);
    expect(requests.map((r) => r.length).sort((a, b) => a - b)).toEqual([200, 500, 500]);
    expect(requests[0]![0]).toEqual({ job_id: 'j0', budget: '10.00', days_online: 1, created_at: new Date(CREATED_AT_MS).toISOString() });
    expect(checks).toHaveLength(1_200);
    checks.forEach((check, i) => {
      expect(check).toEqual({ ok: true, dailyCents: [1000 + i, ...Array<number>(i % 4).fill(0)] });
    });
    expect(events).toEqual([]);
  });

  it('has at most MAX_REQUESTS_IN_FLIGHT requests open at once', async () => {
    let open = 0;
    let mostOpen = 0;
    const { url } = await serve((jobs, response) => {
      open++;
      mostOpen = Math.max(mostOpen, open);
      // Held a little, so that the client has every request it may open open at once.
      setTimeout(() => {
        open--;
        frontLoaded(jobs, response);
      }, 50);
    });
    const service = new ServiceDistribution(url, 5_000, recordingAvailability().availability, makeSilentLogger());
    const jobs = Array.from({ length: MAX_JOBS_PER_REQUEST * 10 }, (_, i) => job(`j${i}`));
    await Promise.all([service.distribute(jobs), service.distribute(jobs.slice(0, 10))]);
    expect(mostOpen).toBe(MAX_REQUESTS_IN_FLIGHT);
  });

  it('gives per-job reasons for refusals and wrong answers, and the rest of the batch its amounts', async () => {
    const { url } = await serve((jobs, response) => {
      const results = [
        { job_id: jobs[0]!.job_id, daily: ['3.00', '0.00', '0.00'] },
        { job_id: jobs[1]!.job_id, error: 'no forecast for this region' },
        { job_id: jobs[2]!.job_id, daily: ['3.00', '0.01', '0.00'] },
        { job_id: jobs[3]!.job_id, daily: ['3.00', '0.00'] },
      ];
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
    });
    const service = new ServiceDistribution(url, 5_000, recordingAvailability().availability, makeSilentLogger());
    const checks = await service.distribute([job('ok'), job('refused'), job('wrong-sum'), job('wrong-count'), job('unanswered')]);
    expect(checks).toEqual([
      { ok: true, dailyCents: [300, 0, 0] },
      { ok: false, reason: 'the service refused the job: no forecast for this region' },
      { ok: false, reason: 'the amounts add up to 3.01, not the budget 3.00' },
      { ok: false, reason: 'distribution service answered 2 amounts for 3 days online' },
      { ok: false, reason: 'no answer for this job' },
    ]);
  });

  it('retries a batch that failed as a whole (500, malformed body, dropped connection) and says when the service is back', async () => {
    const failures: Array<(response: ServerResponse, request: IncomingMessage) => void> = [
      (response) => response.writeHead(500).end('database is down'),
      (response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"results": ['),
      (_response, request) => request.socket.destroy(),
    ];
    const { url, requests } = await serve((jobs, response, request) => {
      const fail = failures.shift();
      if (fail === undefined) frontLoaded(jobs, response);
      else fail(response, request);
    });
    const recorded = recordingAvailability();
    const service = new ServiceDistribution(url, 300, recorded.availability, makeSilentLogger());
    const checks = await service.distribute([job('a')]);
    expect(checks).toEqual([{ ok: true, dailyCents: [300, 0, 0] }]);
    expect(requests).toHaveLength(4);
    // Unavailable once, at the first failure, with its reason; available again at the first answer.
    expect(recorded.events).toEqual(['unavailable since a date: the service answered HTTP 500: database is down', 'available']);
    expect(recorded.requests.map((r) => r.ok)).toEqual([false, false, false, true]);
  });

  it('names the failure of each kind in words an operator can act on', async () => {
    const reasons: string[] = [];
    const answers: Array<(response: ServerResponse) => void> = [
      (response) => response.writeHead(200).end('<html>proxy error</html>'),
      (response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"answers": []}'),
      (response) => response.writeHead(503).end(''),
      () => undefined,
    ];
    const { url } = await serve((jobs, response) => {
      const answer = answers.shift();
      if (answer === undefined) frontLoaded(jobs, response);
      else answer(response);
    });
    const service = new ServiceDistribution(
      url,
      300,
      {
        unavailable: () => undefined,
        available: () => undefined,
        requested: () => undefined,
      },
      { ...makeSilentLogger(), warn: (fields: { reason?: string }) => reasons.push(fields.reason ?? '') } as unknown as ReturnType<
        typeof makeSilentLogger
      >,
    );
    await service.distribute([job('a')]);
    expect(reasons).toEqual([
      'the service answered 200 with a body that is not JSON: <html>proxy error</html>',
      'the service answered 200, but the response is not an object with a results array',
      'the service answered HTTP 503: (empty body)',
      'the service did not answer within 0.3 s (--distribution-timeout)',
    ]);
  }, 20_000);

  it('finds the job a request was refused for (400, 413, 422) by asking halves apart, and sets only that one aside', async () => {
    for (const status of [400, 413, 422]) {
      const { url, requests } = await serve((jobs, response) => {
        if (jobs.some((j) => j.job_id === 'poison')) response.writeHead(status).end(`cannot read job_id poison`);
        else frontLoaded(jobs, response);
      });
      const recorded = recordingAvailability();
      const service = new ServiceDistribution(url, 5_000, recorded.availability, makeSilentLogger());
      const jobs = Array.from({ length: 16 }, (_, i) => job(i === 11 ? 'poison' : `j${i}`));
      const checks = await service.distribute(jobs);
      checks.forEach((check, i) => {
        if (i === 11) {
          expect(check).toEqual({
            ok: false,
            reason: `the service refused a request of this job alone: the service answered HTTP ${status}: cannot read job_id poison`,
          });
        } else {
          expect(check).toEqual({ ok: true, dailyCents: [300, 0, 0] });
        }
      });
      // 16 → 8 → 4 → 2 → 1: one refused request per level, the other halves answered.
      expect(requests.map((r) => r.length)).toEqual(expect.arrayContaining([16, 8, 8, 4, 4, 2, 2, 1, 1]));
      expect(requests).toHaveLength(9);
      expect(recorded.events).toEqual([]); // the service answered every time: it is not unavailable
    }
  });

  it('retries other statuses (401, 404, 429) as failures of the batch, not of its jobs', async () => {
    const statuses = [401, 404, 429];
    const { url, requests } = await serve((jobs, response) => {
      const status = statuses.shift();
      if (status === undefined) frontLoaded(jobs, response);
      else response.writeHead(status).end('not now');
    });
    const recorded = recordingAvailability();
    const service = new ServiceDistribution(url, 5_000, recorded.availability, makeSilentLogger());
    expect(await service.distribute([job('a'), job('b')])).toEqual([
      { ok: true, dailyCents: [300, 0, 0] },
      { ok: true, dailyCents: [300, 0, 0] },
    ]);
    expect(requests.map((r) => r.length)).toEqual([2, 2, 2, 2]);
    expect(recorded.events).toEqual(['unavailable since a date: the service answered HTTP 401: not now', 'available']);
  });

  it('gives up when the signal aborts, while a request is in flight or while waiting to retry', async () => {
    let answered = 0;
    const { url } = await serve(() => answered++); // never answers
    const service = new ServiceDistribution(url, 60_000, recordingAvailability().availability, makeSilentLogger());
    const abort = new AbortController();
    const pending = service.distribute([job('a')], abort.signal);
    await waitFor(() => answered === 1, { message: 'the request to reach the server' });
    abort.abort(new Error('session ended'));
    await expect(pending).rejects.toThrow('session ended');

    const { url: failingUrl } = await serve((_jobs, response) => response.writeHead(500).end('down'));
    const retrying = new ServiceDistribution(failingUrl, 60_000, recordingAvailability().availability, makeSilentLogger());
    const abortRetry = new AbortController();
    const failing = retrying.distribute([job('a')], abortRetry.signal);
    setTimeout(() => abortRetry.abort(new Error('stopping')), 100);
    await expect(failing).rejects.toThrow('stopping');
  });

  it('never shows the password of the URL in its name', () => {
    const service = new ServiceDistribution(
      'https://rules:s3cret@rules.internal/d',
      1000,
      recordingAvailability().availability,
      makeSilentLogger(),
    );
    expect(service.name).toBe('https://rules:***@rules.internal/d');
  });
});
