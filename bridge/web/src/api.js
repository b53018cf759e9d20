// One HTTP call to the bridge's API, as every staff and audit page makes it: JSON, the bearer
// token if there is one, nothing cached, no cookies; a refusal throws the protocol's error code.

/** @typedef {Record<string, any>} Json */

/** A refusal, with the protocol's error code. */
export class ApiError extends Error {
  /** @param {string} code */
  constructor(code) {
    super(code);
    this.code = code;
  }
}

/** @param {string} path @param {string | null} token @param {Json} [body] */
export async function apiCall(path, token, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: body ? "POST" : "GET",
    headers,
    body: body ? JSON.stringify(body) : undefined,
    cache: "no-store",
    credentials: "omit",
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(data?.error?.code ?? `http_${response.status}`);
  return data;
}
