// EXP-003: log in. POST /v1/auth/login {email, password} (name "auth-login").
// LOGIN_EMAIL (default k6-<vu>@lomash-wood.test), LOGIN_PASSWORD (default the lab's).
import http from 'k6/http';
import { check } from 'k6';
import { baseUrl, env, jsonParams, loadOptions, pause } from './lib.js';

export const options = loadOptions({ vus: 10, duration: '60s' });
const BASE = baseUrl();
const PASSWORD = env('LOGIN_PASSWORD', 'Password123!');

export default function () {
  const email = env('LOGIN_EMAIL', `k6-${__VU}@lomash-wood.test`);
  const res = http.post(`${BASE}/v1/auth/login`, JSON.stringify({ email, password: PASSWORD }), jsonParams('auth-login'));
  check(res, { 'login 200': (r) => r.status === 200 });
  pause();
}
