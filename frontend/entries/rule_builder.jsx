/*
 * The segment page: the rule builder above the form's `rule` textarea, which stays visible and
 * editable. The builder writes the rule into the box; a box edited by hand is read back (or, when
 * the builder cannot show it, left alone). "Preview" asks the console how many contacts the box's
 * rule selects now, with a sample.
 */
import { StrictMode, useState } from "react";
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

function SegmentRule({ textarea, config, status }) {
  const [value, setValue] = useState(() => valueOf(textarea.value));
  status.setValue = (text) => setValue(valueOf(text));
  return (
    <RuleBuilder
      value={value}
      fields={config.fields}
      tags={config.tags}
      lists={config.lists}
      idPrefix="rule-builder"
      onStatus={(s) => Object.assign(status, s)}
      onChange={(rule) => {
        textarea.value = rule === null ? "" : ruleText(rule);
        fitTextarea(textarea);
        setValue(rule);
      }}
    />
  );
}

function fitTextarea(textarea) {
  textarea.rows = Math.min(24, Math.max(4, textarea.value.split("\n").length + 1));
}

async function preview(config, textarea, button, result) {
  const body = new FormData();
  body.append("rule", textarea.value);
  const token = textarea.form.querySelector("[name=csrfmiddlewaretoken]");
  button.disabled = true;
  result.replaceChildren(el("p", { className: "help", text: "Counting…" }));
  let data;
  try {
    const response = await fetch(config.previewUrl, {
      method: "POST",
      body,
      headers: { "X-CSRFToken": token ? token.value : "" },
      credentials: "same-origin",
    });
    try {
      data = await response.json();
    } catch {
      data = { errors: [`The preview failed (HTTP ${response.status}).`] };
    }
  } catch (error) {
    data = { errors: [`The preview failed: ${error.message}`] };
  } finally {
    button.disabled = false;
  }
  if (data.errors) {
    result.replaceChildren(el("ul", { className: "errorlist" }, data.errors.map((m) => el("li", { text: m }))));
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
        el("td", {}, [el("a", { href: contact.url, text: contact.email || "(no email)" })]),
        el("td", { text: contact.name }),
      ]),
    );
    parts.push(
      el("table", {}, [
        el("thead", {}, [el("tr", {}, [el("th", { text: "Email" }), el("th", { text: "Name" })])]),
        el("tbody", {}, rows),
      ]),
    );
  }
  result.replaceChildren(...parts);
}

function start() {
  const textarea = document.getElementById("id_rule");
  const configNode = document.getElementById("rule-builder-config");
  if (!textarea || !configNode) return; // read-only page: nothing to build
  const config = JSON.parse(configNode.textContent);
  const fieldRow = textarea.closest(".form-row");

  const mount = el("div");
  const container = el("div", { className: "form-row field-rule-builder" }, [
    el("div", { className: "flex-container" }, [el("label", { text: "Conditions:" }), mount]),
  ]);
  fieldRow.before(container);
  const button = el("button", { type: "button", className: "button", text: "Preview" });
  const result = el("div", { className: "rule-preview-result", "aria-live": "polite" });
  const previewRow = el("div", { className: "form-row field-rule-preview" }, [
    el("div", { className: "flex-container" }, [
      el("label", { text: "Preview:" }),
      el("div", {}, [button, el("span", { className: "help", text: " How many contacts the rule above selects now." }), result]),
    ]),
  ]);
  fieldRow.after(previewRow);
  button.addEventListener("click", () => preview(config, textarea, button, result));

  const status = { incomplete: 0, jsonMode: false, setValue: () => {} };
  fitTextarea(textarea);
  createRoot(mount).render(
    <StrictMode>
      <SegmentRule textarea={textarea} config={config} status={status} />
    </StrictMode>,
  );
  textarea.addEventListener("input", () => {
    fitTextarea(textarea);
    status.setValue(textarea.value);
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
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
