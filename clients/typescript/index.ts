// The TypeScript client: openapi-fetch over the types openapi-typescript
// writes from the OpenAPI document (./schema.ts, made by `make clients`).
import createFetchClient from "openapi-fetch";
import type { Client, ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";
export type Note = components["schemas"]["NoteOut"];
export type NoteList = components["schemas"]["NoteList"];
export type Link = components["schemas"]["LinkOut"];
export type Problem = components["schemas"]["Problem"];
export type ApiClient = Client<paths>;

export interface Options extends ClientOptions {
  /** The API's root; `make serve` listens on http://127.0.0.1:8000. */
  baseUrl?: string;
  /** An API key, sent as `Authorization: Bearer KEY` on every request. */
  apiKey?: string;
}

/** A typed client: `client.GET("/notes/{note_id}", { params: { path: { note_id } } })`. */
export function createClient({ apiKey, ...options }: Options = {}): ApiClient {
  const client = createFetchClient<paths>({ baseUrl: "http://127.0.0.1:8000", ...options });
  if (apiKey) {
    client.use({
      onRequest({ request }) {
        request.headers.set("Authorization", `Bearer ${apiKey}`);
        return request;
      },
    });
  }
  return client;
}
