/*
 * The segment page: the rule builder above the form's `rule` textarea, which stays visible and
 * editable. The builder writes the rule into the box; a box edited by hand is read back (or, when
 * the builder cannot show it, left alone). Under it, the count of contacts the box's rule selects
 * now, with a sample, follows every change (asked of the REST API with the console session).
 *
 * With `"mode": "conditions"` in the page's config (the scoring rule and scoring model pages),
 * every `condition` box of the form (each inline row's too, and rows added later) gets a builder
 * instead, and the box moves under a collapsed "Advanced" line. The fields offered follow the
 * row's `kind` select: an event's fields (`event.*`) for a behaviour rule, none for a fit rule.
 */
import { StrictMode, useEffect, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import RuleBuilder from "../rules/RuleBuilder.jsx";
import { ruleText } from "../rules/rules.js";

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

/* The box's text as a value for the builder: a rule, null when empty, or something no row can
   show (so the builder leaves it alone) while the text is not JSON. */
function valueOf(text) {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  try {
    return JSON.parse(trimmed);
  } catch {
    return { "(not JSON yet)": trimmed };
  }
}

function SegmentRule({ textarea, known, status, onRule }) {
  const [value, setValue] = useState(() => valueOf(textarea.value));
  status.setValue = (text) => setValue(valueOf(text));
  return (
    <RuleBuilder
      value={value}
      fields={known.fields}
      tags={known.tags}
      lists={known.lists}
      eventTypes={known.eventTypes}
      idPrefix="rule-builder"
      onStatus={(s) => Object.assign(status, s)}
      onChange={(rule) => {
        textarea.value = rule === null ? "" : ruleText(rule);
        fitTextarea(textarea);
        setValue(rule);
        onRule();
      }}
    />
  );
}

function fitTextarea(textarea) {
  textarea.rows = Math.min(24, Math.max(4, textarea.value.split("\n").length + 1));
}

const DEBOUNCE_MS = 400;

/* The live count under the rule: asked of the API (POST segments/preview/) once the rule has
   stopped changing for DEBOUNCE_MS. Only the newest question's answer is shown: each change
   aborts the request in flight, and an answer that arrives for an older rule anyway is dropped
   by its sequence number. From the change until the answer, the figure reads "Updating…", never
   the old number. */
function livePreview(config, textarea, result) {
  let timer = null;
  let controller = null;
  let asked = 0;
  let wanted = null; // the rule text of the newest question, asked or waiting

  function show(...nodes) {
    result.replaceChildren(...nodes);
  }

  function updating() {
    result.classList.add("updating");
    show(el("p", { className: "help rule-preview-updating", text: "Updating the count…" }));
  }

  function answered(data) {
    result.classList.remove("updating");
    if (data.errors) {
      show(el("ul", { className: "errorlist" }, data.errors.map((m) => el("li", { text: m }))));
      return;
    }
    const parts = [
      el("p", {}, [
        el("strong", { className: "count", text: data.count.toLocaleString() }),
        ` contact${data.count === 1 ? "" : "s"} match now` +
          (data.sample.length ? `; the first ${data.sample.length}:` : "."),
      ]),
    ];
    if (data.sample.length) {
      const rows = data.sample.map((contact) =>
        el("tr", {}, [
          el("td", {}, [
            el("a", { href: config.contactUrl.replace("/0/", `/${contact.id}/`), text: contact.email || "(no email)" }),
          ]),
          el("td", { text: `${contact.first_name || ""} ${contact.last_name || ""}`.trim() }),
        ]),
      );
      parts.push(
        el("table", {}, [
          el("thead", {}, [el("tr", {}, [el("th", { text: "Email" }), el("th", { text: "Name" })])]),
          el("tbody", {}, rows),
        ]),
      );
    }
    show(...parts);
  }

  async function ask() {
    const text = textarea.value.trim();
    if (controller) controller.abort();
    const mine = ++asked;
    if (text === "") {
      result.classList.remove("updating");
      show(el("p", { className: "help", text: "Add a condition above to see how many contacts match." }));
      return;
    }
    let rule;
    try {
      rule = JSON.parse(text);
    } catch (error) {
      answered({ errors: [`The rule is not valid JSON yet: ${error.message}`] });
      return;
    }
    controller = new AbortController();
    const token = textarea.form.querySelector("[name=csrfmiddlewaretoken]");
    let data;
    try {
      const response = await fetch(`${config.api}segments/preview/`, {
        method: "POST",
        body: JSON.stringify({ rule }),
        headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "" },
        credentials: "same-origin",
        signal: controller.signal,
      });
      try {
        data = await response.json();
      } catch {
        data = {};
      }
      if (!response.ok) {
        // 400 names the rule's problems field by field; 403 and the rest say why in "detail".
        const messages = Object.values(data).flat().filter((m) => typeof m === "string");
        data = { errors: messages.length ? messages : [`The count failed (HTTP ${response.status}).`] };
      }
    } catch (error) {
      if (error.name === "AbortError") return; // a newer rule replaced this one
      data = { errors: [`The count failed: ${error.message}`] };
    }
    if (mine !== asked) return; // an older rule's answer, arrived late
    answered(data);
  }

  return {
    /* The rule changed: the figure is out of date until the new answer arrives. */
    changed() {
      const text = textarea.value.trim();
      if (text === wanted) return; // a row still incomplete: the rule itself did not change
      wanted = text;
      clearTimeout(timer);
      updating();
      timer = setTimeout(ask, DEBOUNCE_MS);
    },
    now() {
      wanted = textarea.value.trim();
      clearTimeout(timer);
      updating();
      ask();
    },
  };
}

/* The pick-lists' values from the API (fields with their choices, the org's tags and lists,
   the event types seen); the page's own list when the API cannot be reached. */
async function vocabulary(config, { withEvent = false } = {}) {
  const get = async (path) => {
    const response = await fetch(config.api + path, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  };
  try {
    const [described, tags, lists] = await Promise.all([
      get("conditions/fields/?subject=contact"),
      get(`tags/?page_size=${config.suggestions}`),
      get(`lists/?page_size=${config.suggestions}`),
    ]);
    return {
      // A segment reads contacts only: the "event." fields are for rules run for an event.
      fields: withEvent ? described.fields : described.fields.filter((f) => !f.path.startsWith("event.")),
      eventTypes: described.event_types.map((t) => t.type),
      tags: tags.results.map((t) => t.name),
      lists: lists.results.map((l) => l.slug),
    };
  } catch {
    return { fields: config.fields, tags: config.tags, lists: config.lists, eventTypes: [] };
  }
}

/* A form row like the rule's own, whatever the admin theme draws around a field: the same
   wrappers and label (copied without their content), `content` where the field goes. */
function rowLike(fieldRow, name, label, content) {
  const line = fieldRow.querySelector(".field-line");
  const original = fieldRow.querySelector("label");
  if (!line || !original || !original.parentElement || original.parentElement.parentElement !== line) {
    return el("div", { className: `form-row ${name}` }, [
      el("div", { className: "flex-container" }, [el("label", { text: `${label}:` }), content]),
    ]);
  }
  const row = fieldRow.cloneNode(false);
  row.classList.remove("last");
  row.classList.add(name);
  const newLine = line.cloneNode(false);
  newLine.classList.remove("field-rule");
  const labelBox = original.parentElement.cloneNode(false);
  const newLabel = original.cloneNode(false);
  newLabel.removeAttribute("for");
  newLabel.textContent = label;
  labelBox.append(newLabel);
  newLine.append(labelBox, el("div", { className: "grow relative" }, [content]));
  row.append(newLine);
  return row;
}

async function start() {
  const textarea = document.getElementById("id_rule");
  const configNode = document.getElementById("rule-builder-config");
  if (!textarea || !configNode) return; // read-only page: nothing to build
  const config = JSON.parse(configNode.textContent);
  const fieldRow = textarea.closest(".form-row");

  const mount = el("div");
  const container = rowLike(fieldRow, "field-rule-builder", "Conditions", mount);
  fieldRow.before(container);
  const button = el("button", { type: "button", className: "button rule-preview-button", text: "Preview" });
  button.title = "Count again now (the count also follows the rule as you edit it)";
  const result = el("div", { className: "rule-preview-result", "aria-live": "polite" });
  const help = " How many contacts the rule above selects now; it follows your changes.";
  const previewRow = rowLike(fieldRow, "field-rule-preview", "Contacts matching", el("div", {}, [button, el("span", { className: "help", text: help }), result]));
  fieldRow.after(previewRow);
  const counter = livePreview(config, textarea, result);
  button.addEventListener("click", () => counter.now());

  const status = { incomplete: 0, jsonMode: false, setValue: () => {} };
  fitTextarea(textarea);
  mount.append(el("p", { className: "help", text: "Loading the fields…" }));
  const known = await vocabulary(config);
  mount.replaceChildren();
  createRoot(mount).render(
    <StrictMode>
      <SegmentRule textarea={textarea} known={known} status={status} onRule={() => counter.changed()} />
    </StrictMode>,
  );
  textarea.addEventListener("input", () => {
    fitTextarea(textarea);
    status.setValue(textarea.value);
    counter.changed();
  });
  textarea.form.addEventListener("submit", (event) => {
    if (status.jsonMode || container.hidden || !status.incomplete) return;
    event.preventDefault();
    const note = container.querySelector(".rule-builder-note");
    if (note) {
      note.textContent = "Complete or remove the highlighted conditions before saving.";
      note.scrollIntoView({ block: "center" });
    }
  });
  const kind = document.getElementById("id_kind");
  const showForKind = () => {
    const dynamic = kind.value !== "static";
    container.hidden = !dynamic;
    previewRow.hidden = !dynamic;
    // A static segment has no rule: hide the box unless it holds one (which saving refuses).
    fieldRow.hidden = !dynamic && textarea.value.trim() === "";
  };
  if (kind) {
    kind.addEventListener("change", showForKind);
    showForKind();
  }
  counter.now(); // a saved rule's count, as of now
}

/* One condition box of a form with a `kind` select beside it (a scoring rule): the builder in a
   row of its own, the box itself under "Advanced". */
function ConditionRule({ textarea, known, kindSelect, status, advanced }) {
  const [value, setValue] = useState(() => valueOf(textarea.value));
  const [kind, setKind] = useState(() => (kindSelect ? kindSelect.value : "behaviour"));
  useEffect(() => {
    if (!kindSelect) return undefined;
    const follow = () => setKind(kindSelect.value);
    kindSelect.addEventListener("change", follow);
    return () => kindSelect.removeEventListener("change", follow);
  }, [kindSelect]);
  useEffect(() => {
    const follow = () => setValue(valueOf(textarea.value));
    textarea.addEventListener("input", follow);
    return () => textarea.removeEventListener("input", follow);
  }, [textarea]);
  const fields = useMemo(
    () => (kind === "fit" ? known.fields.filter((f) => !f.path.startsWith("event.")) : known.fields),
    [kind, known.fields],
  );
  return (
    <RuleBuilder
      value={value}
      fields={fields}
      tags={known.tags}
      lists={known.lists}
      eventTypes={known.eventTypes}
      idPrefix={textarea.id || "condition"}
      onStatus={(s) => {
        Object.assign(status, s);
        if (s.jsonMode) advanced.open = true; // the builder cannot show it: the box is where to edit
      }}
      onChange={(rule) => {
        textarea.value = rule === null ? "" : ruleText(rule);
        fitTextarea(textarea);
        setValue(rule);
      }}
    />
  );
}

function mountCondition(textarea, known, statuses) {
  if (textarea.dataset.ruleBuilder) return;
  textarea.dataset.ruleBuilder = "on";
  const fieldRow = textarea.closest(".form-row") || textarea.parentElement;
  const mount = el("div");
  const container = rowLike(fieldRow, "field-condition-builder", "Condition", mount);
  const advanced = el("details", { className: "rule-builder-advanced" }, [
    el("summary", { text: "Advanced: the condition as JSON" }),
  ]);
  fieldRow.before(container);
  container.after(advanced);
  advanced.append(fieldRow);
  const kindSelect = textarea.form ? textarea.form.elements[textarea.name.replace(/condition$/, "kind")] : null;
  const status = { incomplete: 0, jsonMode: false, container };
  statuses.push(status);
  fitTextarea(textarea);
  createRoot(mount).render(
    <StrictMode>
      <ConditionRule textarea={textarea} known={known} kindSelect={kindSelect} status={status} advanced={advanced} />
    </StrictMode>,
  );
}

async function startConditions(config) {
  const boxes = () =>
    [...document.querySelectorAll("textarea[name$='condition']")].filter((t) => !t.name.includes("__prefix__"));
  const first = boxes()[0];
  if (!first) return; // read-only page: nothing to build
  const known = await vocabulary(config, { withEvent: true });
  const statuses = [];
  boxes().forEach((textarea) => mountCondition(textarea, known, statuses));
  // An inline row added with "Add another" gets its builder too.
  document.addEventListener("formset:added", (event) => {
    const textarea = event.target.querySelector && event.target.querySelector("textarea[name$='condition']");
    if (textarea) mountCondition(textarea, known, statuses);
  });
  first.form.addEventListener("submit", (event) => {
    const blocking = statuses.find((s) => s.incomplete && !s.jsonMode && s.container.isConnected);
    if (!blocking) return;
    event.preventDefault();
    const note = blocking.container.querySelector(".rule-builder-note");
    if (note) {
      note.textContent = "Complete or remove the highlighted conditions before saving.";
      note.scrollIntoView({ block: "center" });
    }
  });
}

function boot() {
  const configNode = document.getElementById("rule-builder-config");
  const config = configNode ? JSON.parse(configNode.textContent) : null;
  if (config && config.mode === "conditions") startConditions(config);
  else start();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
