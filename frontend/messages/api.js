/* The REST API with the console's session (same-origin cookie, the page's CSRF token). Answers
   {ok, status, data} or {aborted: true}; never throws. */

function csrfToken() {
  const input = document.querySelector("[name=csrfmiddlewaretoken]");
  if (input && input.value) return input.value;
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return match ? decodeURIComponent(match[1]) : "";
}

async function call(url, options) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", ...options });
  } catch (error) {
    if (error.name === "AbortError") return { aborted: true };
    return { ok: false, status: 0, data: { detail: `The server could not be reached: ${error.message}` } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    if (error.name === "AbortError") return { aborted: true };
  }
  return { ok: response.ok, status: response.status, data };
}

export function getJson(url, signal) {
  return call(url, { headers: { Accept: "application/json" }, signal });
}

export function postJson(url, body, signal) {
  return call(url, {
    method: "POST",
    body,
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    signal,
  });
}
