// Game day: a surge of appointment bookings. POST /v1/appointments {customer, slot}
// (name "appointment-book"), arrivals ramping from START_RATE to PEAK_RATE per second
// over RAMP, held for DURATION, then back down over RAMP (ramping-arrival-rate).
// START_RATE (default 1), PEAK_RATE (default 20), RAMP (default 10s), VUS (pre-allocated,
// default 10), MAX_VUS (default 4 x VUS).
import http from 'k6/http';
import { check } from 'k6';
import { baseUrl, env, jsonParams, positiveInt } from './lib.js';

const VUS = positiveInt('VUS', 10);
const RAMP = env('RAMP', '10s');
export const options = {
  scenarios: {
    surge: {
      executor: 'ramping-arrival-rate',
      startRate: positiveInt('START_RATE', 1),
      timeUnit: '1s',
      preAllocatedVUs: VUS,
      maxVUs: positiveInt('MAX_VUS', VUS * 4),
      stages: [
        { target: positiveInt('PEAK_RATE', 20), duration: RAMP },
        { target: positiveInt('PEAK_RATE', 20), duration: env('DURATION', '60s') },
        { target: positiveInt('START_RATE', 1), duration: RAMP },
      ],
    },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
};
const BASE = baseUrl();

export default function () {
  const slot = new Date(Date.now() + 86400000 * (1 + (__ITER % 30))).toISOString().slice(0, 13) + ':00:00Z';
  const body = JSON.stringify({ customer: `k6-customer-${__VU}-${__ITER}@lomash-wood.test`, slot });
  const res = http.post(`${BASE}/v1/appointments`, body, jsonParams('appointment-book'));
  check(res, { 'booking 2xx': (r) => r.status >= 200 && r.status < 300 });
}
