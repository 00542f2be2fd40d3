// EXP-007: Stripe-like webhook deliveries. POST /v1/webhooks/stripe (name "stripe-webhook").
// Each event has a unique id; WEBHOOK_TYPE (default payment_intent.succeeded),
// PAYMENT_INTENT (default a fresh pi_k6_... per event). STRIPE_WEBHOOK_SECRET: sign the
// delivery as Stripe does (Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>);
// without it the header is left out and a real endpoint answers 400.
import http from 'k6/http';
import crypto from 'k6/crypto';
import { check } from 'k6';
import { baseUrl, env, jsonParams, loadOptions, pause } from './lib.js';

export const options = loadOptions({ vus: 2, duration: '60s' });
const BASE = baseUrl();
const TYPE = env('WEBHOOK_TYPE', 'payment_intent.succeeded');
const SECRET = env('STRIPE_WEBHOOK_SECRET', '');

export default function () {
  const unique = `${__VU}_${__ITER}_${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const payload = JSON.stringify({
    id: `evt_k6_${unique}`,
    object: 'event',
    type: TYPE,
    created,
    data: { object: { id: env('PAYMENT_INTENT', `pi_k6_${unique}`), object: 'payment_intent' } },
  });
  const headers = {};
  if (SECRET !== '') {
    const signature = crypto.hmac('sha256', SECRET, `${created}.${payload}`, 'hex');
    headers['Stripe-Signature'] = `t=${created},v1=${signature}`;
  }
  const res = http.post(`${BASE}/v1/webhooks/stripe`, payload, jsonParams('stripe-webhook', headers));
  check(res, { 'webhook 2xx': (r) => r.status >= 200 && r.status < 300 });
  pause();
}
