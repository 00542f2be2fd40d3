// Shared by the runbooks' k6 scripts (k6 built-ins only; no thresholds: the verdict is
// computed afterwards by chaos-verdict from the points, window by window).
//
// Environment (k6 reads the process environment, or -e NAME=VALUE):
//   BASE_URL         required: the API gateway, e.g. http://localhost:3000
//   VUS              virtual users (default per script); with RATE, pre-allocated VUs
//   DURATION         how long (default per script), e.g. 30s, 10m
//   RATE             iterations per second, constant whatever the latency
//                    (constant-arrival-rate); without it, VUS loop with SLEEP between
//   MAX_VUS          with RATE: VUs k6 may add when responses slow down (default 4 x VUS)
//   SLEEP            seconds between iterations of one VU without RATE (default 1)
//   REQUEST_TIMEOUT  per request (default 10s): a hung request becomes an error, not silence
//   NAME_PREFIX      put before every request's name tag (EXP-009: "failover-" tells the
//                    failover region's smoke requests from the main load's)

import { sleep } from 'k6';

export function env(name, fallback) {
  const value = __ENV[name];
  return value === undefined || value === '' ? fallback : value;
}

export function positiveInt(name, fallback) {
  const text = env(name, String(fallback));
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${name} must be a whole number above 0 (got '${text}')`);
  }
  return n;
}

export function baseUrl() {
  const url = env('BASE_URL', '');
  if (!/^https?:\/\/[^/\s]+/.test(url)) {
    throw new Error(`BASE_URL must be an http(s) URL such as http://localhost:3000 (got '${url}')`);
  }
  return url.replace(/\/+$/, '');
}

// The load shape: constant-arrival-rate with RATE, else constant VUs.
export function loadOptions(defaults) {
  const vus = positiveInt('VUS', defaults.vus);
  const duration = env('DURATION', defaults.duration);
  const scenario = env('RATE', '') !== ''
    ? {
        executor: 'constant-arrival-rate',
        rate: positiveInt('RATE', 1),
        timeUnit: '1s',
        duration,
        preAllocatedVUs: vus,
        maxVUs: positiveInt('MAX_VUS', vus * 4),
      }
    : { executor: 'constant-vus', vus, duration };
  return {
    scenarios: { load: scenario },
    summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
  };
}

// Request parameters: the name tag every check filters on, the timeout, headers.
export function params(name, headers) {
  return {
    tags: { name: env('NAME_PREFIX', '') + name },
    timeout: env('REQUEST_TIMEOUT', '10s'),
    headers: Object.assign({ 'User-Agent': 'chaos-tools-k6/1' }, headers || {}),
  };
}

export function jsonParams(name, headers) {
  return params(name, Object.assign({ 'Content-Type': 'application/json' }, headers || {}));
}

// Think time between iterations; none under an arrival rate (k6 paces those).
export function pause() {
  if (env('RATE', '') === '') {
    sleep(Number(env('SLEEP', '1')));
  }
}

// The bearer token of a login answer: {accessToken}, {token} or {data: {...}}.
export function tokenOf(res) {
  try {
    const body = res.json();
    const data = body && body.data ? body.data : body;
    return (data && (data.accessToken || data.token)) || '';
  } catch (e) {
    return '';
  }
}
