// POST /notes at a constant arrival rate, for the bench's push latency
// (bench/common.py post_notes). Each created note's id is a tag of one
// note_answered sample, stamped when its answer arrived.
//
//   API_URL=http://127.0.0.1:8000 RATE=500 DURATION=10s k6 run bench/writes.js

import http from "k6/http";
import { Counter } from "k6/metrics";

const BASE = (__ENV.API_URL || "http://127.0.0.1:8000").replace(/\/+$/, "");
const RATE = Number(__ENV.RATE || 100);
const VUS = Number(__ENV.VUS || Math.max(16, Math.ceil(RATE / 10)));
const answered = new Counter("note_answered");
const headers = { "Content-Type": "application/json" };

export const options = {
  scenarios: {
    writes: {
      executor: "constant-arrival-rate",
      rate: RATE,
      timeUnit: "1s",
      duration: __ENV.DURATION || "10s",
      preAllocatedVUs: VUS,
      maxVUs: VUS * 4,
    },
  },
  summaryTrendStats: ["med", "p(99)", "max"],
};

export default function () {
  const body = JSON.stringify({ title: `load ${__VU}-${__ITER}`, body: "bench" });
  const created = http.post(`${BASE}/notes`, body, { headers });
  if (created.status === 201) {
    answered.add(1, { id: created.json("id") });
  }
}
