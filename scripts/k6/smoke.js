// EXP-009 (the failover region) and a quick "is it up": GET /health (name "health"),
// GET /v1/products ("products"), POST /v1/auth/login ("auth-login"), ITERATIONS times
// (default 3) by one VU. Its checks are recorded in the points; the runbook judges them.
import http from 'k6/http';
import { check } from 'k6';
import { baseUrl, env, jsonParams, params, positiveInt } from './lib.js';

export const options = {
  scenarios: { smoke: { executor: 'per-vu-iterations', vus: 1, iterations: positiveInt('ITERATIONS', 3), maxDuration: env('DURATION', '60s') } },
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
};
const BASE = baseUrl();

export default function () {
  check(http.get(`${BASE}/health`, params('health')), { 'health 200': (r) => r.status === 200 });
  check(http.get(`${BASE}/v1/products`, params('products')), { 'products 200': (r) => r.status === 200 });
  const login = JSON.stringify({ email: env('LOGIN_EMAIL', 'k6-smoke@lomash-wood.test'), password: env('LOGIN_PASSWORD', 'Password123!') });
  check(http.post(`${BASE}/v1/auth/login`, login, jsonParams('auth-login')), { 'login 200': (r) => r.status === 200 });
}
