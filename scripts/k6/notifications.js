// EXP-006: what the users of notification-service see. GET /v1/notifications
// (name "notifications").
import http from 'k6/http';
import { check } from 'k6';
import { baseUrl, loadOptions, params, pause } from './lib.js';

export const options = loadOptions({ vus: 10, duration: '60s' });
const BASE = baseUrl();

export default function () {
  const res = http.get(`${BASE}/v1/notifications`, params('notifications'));
  check(res, { 'notifications 200': (r) => r.status === 200 });
  pause();
}
