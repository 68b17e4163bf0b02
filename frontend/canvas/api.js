/* The REST API with the console's session: same-origin cookies and the CSRF token. */

function csrfToken() {
  const input = document.querySelector("[name=csrfmiddlewaretoken]");
  if (input && input.value) return input.value;
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return match ? decodeURIComponent(match[1]) : "";
}

/* {ok, status, data}; data is the parsed JSON body or null. Never throws on HTTP errors. */
export async function request(url, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    return { ok: false, status: 0, data: { detail: `The server could not be reached: ${error.message}` } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { ok: response.ok, status: response.status, data };
}

/* Every list of a paginated endpoint's results, or [] when it is not there. */
export async function listOf(url) {
  const answer = await request(url + (url.includes("?") ? "&" : "?") + "page_size=500");
  if (!answer.ok || !answer.data) return [];
  return Array.isArray(answer.data) ? answer.data : answer.data.results || [];
}

const SENTENCE = /^steps\[([^\]]+)\]\.?([^:]*):\s*(.*)$/;

/* The problems of an error answer as [{step, path, message}]: the structured ones when the
   server sends them, else read from its sentences ("steps[id].field: what"). */
export function problemsOf(data) {
  if (!data || typeof data !== "object") return [];
  const structured = [];
  const sentences = [];
  const walk = (value) => {
    if (Array.isArray(value)) {
      value.forEach((item) => {
        if (item && typeof item === "object" && typeof item.message === "string" && ("step" in item || "path" in item)) {
          structured.push({ step: item.step ?? null, path: item.path || "", message: item.message });
        } else if (typeof item === "string") {
          sentences.push(item);
        } else walk(item);
      });
    } else if (value && typeof value === "object") Object.values(value).forEach(walk);
    else if (typeof value === "string") sentences.push(value);
  };
  walk(data);
  if (structured.length) return structured;
  return sentences.map((sentence) => {
    const match = SENTENCE.exec(sentence);
    return match ? { step: match[1], path: match[2], message: match[3] } : { step: null, path: "", message: sentence };
  });
}
