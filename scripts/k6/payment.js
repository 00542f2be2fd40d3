// EXP-002, EXP-004: create payment intents. POST /v1/payments/create-intent
// {amount, currency} with a bearer token (name "payment-intent").
// TOKEN: use it; else setup() logs in once (name "setup-login") with LOGIN_EMAIL /
// LOGIN_PASSWORD. A failed login leaves the token empty: the intents then show what the
// service answers without one (401), which is an observation, not a script error.
// AMOUNT (pence, default 1999), CURRENCY (default gbp).
import http from 'k6/http';
import { check } from 'k6';
import { baseUrl, env, jsonParams, loadOptions, pause, positiveInt, tokenOf } from './lib.js';

export const options = loadOptions({ vus: 10, duration: '60s' });
const BASE = baseUrl();
const AMOUNT = positiveInt('AMOUNT', 1999);
const CURRENCY = env('CURRENCY', 'gbp');

export function setup() {
  const given = env('TOKEN', '');
  if (given !== '') {
    return { token: given };
  }
  const body = JSON.stringify({
    email: env('LOGIN_EMAIL', 'k6-payments@lomash-wood.test'),
    password: env('LOGIN_PASSWORD', 'Password123!'),
  });
  const res = http.post(`${BASE}/v1/auth/login`, body, jsonParams('setup-login'));
  return { token: tokenOf(res) };
}

export default function (data) {
  const headers = data.token ? { Authorization: `Bearer ${data.token}` } : {};
  const body = JSON.stringify({ amount: AMOUNT, currency: CURRENCY });
  const res = http.post(`${BASE}/v1/payments/create-intent`, body, jsonParams('payment-intent', headers));
  check(res, { 'intent 2xx': (r) => r.status >= 200 && r.status < 300 });
  pause();
}
