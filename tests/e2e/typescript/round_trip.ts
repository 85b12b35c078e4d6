// The TypeScript client of `make clients` against a live server:
//   node round_trip.js BASE_URL WRITE_KEY
// creates, reads, lists, patches (If-Match) and deletes a note, then
// shortens a URL and follows it. tsc checks every call against the types
// generated from the OpenAPI document; node checks every answer here.
import assert from "node:assert/strict";
import { createClient } from "falcon-pypy-api-client";
import type { Link, Note, Problem } from "falcon-pypy-api-client";

const [baseUrl, apiKey] = process.argv.slice(2);
const client = createClient({ baseUrl, apiKey });

function problem(error: Problem | undefined, status: number): Problem {
  assert.ok(error, `no problem where ${status} was due`);
  assert.equal(error.status, status, JSON.stringify(error));
  assert.equal(typeof error.title, "string");
  return error;
}

const created = await client.POST("/notes", {
  body: { title: "Groceries", body: "milk, eggs" },
});
assert.equal(created.response.status, 201, JSON.stringify(created.error));
const note: Note = created.data!;
assert.deepEqual([note.title, note.body], ["Groceries", "milk, eggs"]);
assert.match(note.id, /^[0-9a-f]{32}$/);
assert.equal(note.created_at, note.updated_at);
assert.equal(created.response.headers.get("Location"), `/notes/${note.id}`);
assert.equal(created.response.headers.get("ETag"), '"1"');

const item = { params: { path: { note_id: note.id } } };
const read = await client.GET("/notes/{note_id}", item);
assert.deepEqual(read.data, note);
const etag = read.response.headers.get("ETag")!;
const fresh = await client.GET("/notes/{note_id}", {
  params: { path: { note_id: note.id }, header: { "If-None-Match": etag } },
});
assert.equal(fresh.response.status, 304);

const listed = await client.GET("/notes", { params: { query: { limit: 10 } } });
assert.deepEqual(listed.data, { items: [note], next: null });

const patch = (body: string, ifMatch: string) =>
  client.PATCH("/notes/{note_id}", {
    params: { path: { note_id: note.id }, header: { "If-Match": ifMatch } },
    body: { body },
  });
const patched = await patch("just milk", etag);
assert.equal(patched.response.status, 200, JSON.stringify(patched.error));
assert.deepEqual(patched.data, { ...note, body: "just milk", updated_at: patched.data!.updated_at });
assert.ok(patched.data!.updated_at > note.updated_at);
assert.equal(patched.response.headers.get("ETag"), '"2"');
problem((await patch("lost", etag)).error, 412);

const deleted = await client.DELETE("/notes/{note_id}", {
  params: { path: { note_id: note.id }, header: { "If-Match": '"2"' } },
});
assert.equal(deleted.response.status, 204);
problem((await client.GET("/notes/{note_id}", item)).error, 404);

const url = "https://example.com/spring?ref=mail";
const made = await client.POST("/links", { body: { url } });
assert.equal(made.response.status, 201, JSON.stringify(made.error));
const link: Link = made.data!;
assert.deepEqual([link.url, link.visits, link.max_visits], [url, 0, null]);
assert.ok(link.short_url.endsWith(`/${link.code}`));
const followed = await client.GET("/{code}", {
  params: { path: { code: link.code } },
  redirect: "manual",
});
assert.equal(followed.response.status, 302);
assert.equal(followed.response.headers.get("Location"), url);
const counted = await client.GET("/links/{code}", { params: { path: { code: link.code } } });
assert.equal(counted.data!.visits, 1);

const anonymous = createClient({ baseUrl });
const refused = await anonymous.GET("/notes", {});
problem(refused.error, 401);
assert.match(refused.response.headers.get("WWW-Authenticate")!, /^Bearer /);
console.log("round trip: ok");
