/*
 * The live status of a workflow's change page: opens the websocket /ws/workflows/<id>/ and keeps
 * the per-step counts and the activity feed current without a reload.
 *
 * A message is {"workflow", "transitions": [{instance, contact, step, to, status, at}], "total",
 * optional "counts" ({step: {waiting, running, done, failed}}), optional "notification"}. The
 * server sends counts at most once a second per workflow, so after a message without them the
 * page asks for them once (countsUrl). A socket closed with 4403 (not allowed) is not reopened;
 * any other close is, with a growing delay.
 *
 * The canvas on the same page shows the counts on its steps: each update is passed on as the
 * document events "workflow-live:counts" (detail: the counts) and "workflow-live:transitions"
 * (detail: the transitions).
 *
 * No dependencies. Everything from the server goes into the DOM as text, never as HTML.
 */
(function () {
  "use strict";

  const COUNTS = ["waiting", "running", "done", "failed"];
  const FEED_MAX = 100;
  const COUNTS_DELAY_MS = 1200;
  const RETRY_MAX_MS = 30000;

  const config = JSON.parse(document.getElementById("workflow-live-config").textContent);
  const panel = document.getElementById("workflow-live");
  const stateLabel = panel.querySelector(".live-state");
  const rows = document.querySelector("#workflow-step-counts tbody");
  const feed = document.getElementById("workflow-activity");
  let retryMs = 1000;
  let countsTimer = null;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => node.append(child));
    return node;
  }

  function setState(name, text) {
    panel.dataset.state = name;
    stateLabel.textContent = text;
  }

  /* The row of a step, added at the end for a step the page did not list (an older version's). */
  function rowFor(step) {
    const found = Array.from(rows.querySelectorAll("tr[data-step]")).find((row) => row.dataset.step === step);
    if (found) return found;
    rows.querySelectorAll("tr.empty").forEach((row) => row.remove());
    const row = el("tr", { "data-step": step }, [el("td", { text: step }), el("td", { text: "" })]);
    COUNTS.forEach((name) => row.append(el("td", { "data-count": name, text: "0" })));
    rows.append(row);
    return row;
  }

  function showCounts(counts) {
    document.dispatchEvent(new CustomEvent("workflow-live:counts", { detail: counts }));
    rows.querySelectorAll("tr[data-step]").forEach((row) => {
      const values = counts[row.dataset.step] || {};
      COUNTS.forEach((name) => {
        row.querySelector(`[data-count="${name}"]`).textContent = String(values[name] || 0);
      });
    });
    Object.entries(counts).forEach(([step, values]) => {
      const row = rowFor(step);
      COUNTS.forEach((name) => {
        row.querySelector(`[data-count="${name}"]`).textContent = String(values[name] || 0);
      });
    });
  }

  function fetchCounts() {
    fetch(config.countsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((body) => body && showCounts(body.counts))
      .catch(() => {}); // the next message brings them
  }

  function fetchCountsSoon() {
    if (countsTimer === null) {
      countsTimer = setTimeout(() => {
        countsTimer = null;
        fetchCounts();
      }, COUNTS_DELAY_MS);
    }
  }

  function time(iso) {
    const moment = iso ? new Date(iso) : new Date();
    return el("time", { datetime: moment.toISOString(), text: moment.toLocaleTimeString() });
  }

  function runLink(instance) {
    return el("a", { href: config.instanceUrl.replace("/0/", `/${Number(instance)}/`), text: `run #${instance}` });
  }

  function transitionItem(t) {
    const target = t.to || (t.result ? `end (${t.result})` : "end");
    return el("li", { className: `transition status-${t.status}` }, [
      time(t.at),
      " ",
      runLink(t.instance),
      ` · contact #${t.contact} · ${t.step} → ${target} · ${t.status}`,
    ]);
  }

  function notificationItem(n) {
    return el("li", { className: "notification" }, [time(), " ", runLink(n.instance), ` · ${n.step}: `,
      el("strong", { text: n.message })]);
  }

  /* Newest first; items come oldest first. */
  function addToFeed(items) {
    feed.querySelectorAll(".placeholder").forEach((node) => node.remove());
    items.forEach((item) => feed.prepend(item));
    while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  }

  function onMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (message.workflow !== config.workflow) return;
    const transitions = message.transitions || [];
    if (transitions.length) document.dispatchEvent(new CustomEvent("workflow-live:transitions", { detail: transitions }));
    if (message.counts) showCounts(message.counts);
    else if (transitions.length) fetchCountsSoon();
    const items = [];
    if (message.total > transitions.length) {
      items.push(el("li", { className: "summary help", text: `… ${message.total - transitions.length} earlier transition(s) of this batch` }));
    }
    transitions.forEach((t) => items.push(transitionItem(t)));
    if (message.notification) items.push(notificationItem(message.notification));
    addToFeed(items);
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}${config.socketPath}`);
    socket.addEventListener("open", () => {
      retryMs = 1000;
      setState("live", "live");
      fetchCounts(); // what moved between rendering the page and now
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", (event) => {
      if (event.code === 4403) {
        setState("refused", "not allowed");
        return;
      }
      setState("reconnecting", "reconnecting…");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    });
  }

  setState("connecting", "connecting…");
  connect();
})();
