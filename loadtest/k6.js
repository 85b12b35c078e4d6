// Open-loop load for k6: notes, short links and salaries at a fixed rate.
//
//   API_URL=http://127.0.0.1:8000 API_KEY=$(cat var/api-key) RATE=50 DURATION=1m \
//     k6 run loadtest/k6.js
//
// Each scenario starts its iterations on a clock (the constant-arrival-rate
// executor), whether or not earlier ones have been answered, so a server
// that stalls meets the same rate and its stall shows in every latency.
// docs/user/load-testing.md says what each variable does.

import http from "k6/http";
import { check, fail } from "k6";

const BASE = (__ENV.API_URL || "http://127.0.0.1:8000").replace(/\/+$/, "");
const KEY = __ENV.API_KEY || "";
// Iterations per second, all scenarios together; one is 2 or 3 requests.
const RATE = Number(__ENV.RATE || 30);
const DURATION = __ENV.DURATION || "30s";
// Virtual users made before the start; k6 adds more, up to MAX_VUS, when
// answers are slow, and counts an iteration it could not start in time as
// dropped (a threshold below).
const VUS = Number(__ENV.VUS || Math.max(10, RATE));
const MAX_VUS = Number(__ENV.MAX_VUS || VUS * 4);
const P99_MS = Number(__ENV.P99_MS || 500);
const MAX_FAILED = Number(__ENV.MAX_FAILED || 0.01);

const SHARES = { notes: 0.4, links: 0.3, salaries: 0.3 };

function scenario(name) {
  const share = SHARES[name];
  return {
    executor: "constant-arrival-rate",
    exec: name,
    // Per minute, so that small shares of a small RATE stay exact.
    rate: Math.max(1, Math.round(RATE * share * 60)),
    timeUnit: "1m",
    duration: DURATION,
    preAllocatedVUs: Math.max(1, Math.ceil(VUS * share)),
    maxVUs: Math.max(1, Math.ceil(MAX_VUS * share)),
  };
}

export const options = {
  scenarios: {
    notes: scenario("notes"),
    links: scenario("links"),
    salaries: scenario("salaries"),
  },
  thresholds: {
    http_req_failed: [`rate<=${MAX_FAILED}`],
    http_req_duration: [`p(99)<${P99_MS}`],
    checks: [`rate>=${1 - MAX_FAILED}`],
    // The asked rate was not kept: the server, or the machine running k6,
    // was too slow for it.
    dropped_iterations: ["count==0"],
  },
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(99)", "max"],
};

const AUTH = KEY ? { Authorization: `Bearer ${KEY}` } : {};
const JSON_AUTH = Object.assign({ "Content-Type": "application/json" }, AUTH);

// A request that answers any other status counts in http_req_failed.
function params(name, status, headers, extra) {
  return Object.assign(
    {
      headers: headers || {},
      tags: { name },
      responseCallback: http.expectedStatuses(status),
    },
    extra || {},
  );
}

function field(response, name) {
  try {
    return response.json(name);
  } catch (error) {
    return undefined;
  }
}

export function setup() {
  const response = http.get(`${BASE}/departments`, params("/departments", 200));
  const departments = field(response, "departments");
  if (response.status !== 200 || !departments || departments.length === 0) {
    fail(`no departments at ${BASE}/departments (${response.status}): run python -m api import-salaries`);
  }
  return { departments };
}

export function notes() {
  const body = JSON.stringify({ title: `k6 ${__VU}-${__ITER}`, body: "x".repeat(200) });
  const created = http.post(`${BASE}/notes`, body, params("/notes", 201, JSON_AUTH));
  const id = field(created, "id");
  if (!check(created, { "POST /notes: 201 with an id": (r) => r.status === 201 && !!id })) {
    return;
  }
  const read = http.get(`${BASE}/notes/${id}`, params("/notes/[id]", 200, AUTH));
  check(read, {
    "GET /notes/[id]: 200, the same note": (r) => r.status === 200 && field(r, "id") === id,
  });
}

export function links() {
  const target = `https://example.com/k6/${__VU}-${__ITER}-${Date.now()}`;
  const created = http.post(
    `${BASE}/links`,
    JSON.stringify({ url: target }),
    params("/links", 201, JSON_AUTH),
  );
  const code = field(created, "code");
  if (!check(created, { "POST /links: 201 with a code": (r) => r.status === 201 && !!code })) {
    return;
  }
  // A visitor without a key; the redirect is checked, not followed.
  const visit = http.get(`${BASE}/${code}`, params("/[code]", 302, {}, { redirects: 0 }));
  check(visit, {
    "GET /[code]: 302 to the URL": (r) => r.status === 302 && r.headers.Location === target,
  });
}

export function salaries(data) {
  const departments = data.departments;
  const name = encodeURIComponent(departments[Math.floor(Math.random() * departments.length)]);
  const stats = http.get(`${BASE}/departments/${name}`, params("/departments/[name]", 200));
  check(stats, { "GET /departments/[name]: 200": (r) => r.status === 200 });
  const page = http.get(
    `${BASE}/departments/${name}/employees?limit=50&order=-salary`,
    params("/departments/[name]/employees", 200),
  );
  check(page, {
    "GET /departments/[name]/employees: 200 with items": (r) =>
      r.status === 200 && Array.isArray(field(r, "items")),
  });
}
