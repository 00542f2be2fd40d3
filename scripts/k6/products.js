// EXP-001, EXP-003, EXP-005: browse the catalogue. GET /v1/products (name "products").
// PRODUCT_ID: also GET /v1/products/{id} (name "product").
import http from 'k6/http';
import { check } from 'k6';
import { baseUrl, env, loadOptions, params, pause } from './lib.js';

export const options = loadOptions({ vus: 10, duration: '60s' });
const BASE = baseUrl();
const PRODUCT_ID = env('PRODUCT_ID', '');

export default function () {
  const res = http.get(`${BASE}/v1/products`, params('products'));
  check(res, { 'products 200': (r) => r.status === 200 });
  if (PRODUCT_ID !== '') {
    http.get(`${BASE}/v1/products/${encodeURIComponent(PRODUCT_ID)}`, params('product'));
  }
  pause();
}
