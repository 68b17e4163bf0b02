/*
 * The segment rule builder: edits a rule as a list of conditions joined by ALL (and) or ANY (or)
 * and writes it as JsonLogic into the form's `rule` textarea, which stays visible and editable.
 * A rule the builder cannot show exactly is "edited as JSON" and left alone. "Preview" asks the
 * console how many contacts the textarea's rule selects now, with a sample.
 *
 * No dependencies. Everything taken from the page or the server goes into the DOM as text
 * (textContent, option text, input values), never as HTML.
 */
(function () {
  "use strict";

  const OPERATORS = {
    is: { label: "is" },
    is_not: { label: "is not" },
    contains: { label: "contains" },
    gt: { label: "greater than", datetime: "after" },
    lt: { label: "less than", datetime: "before" },
    empty: { label: "is empty", noValue: true },
    not_empty: { label: "is not empty", noValue: true },
    has_tag: { label: "has tag" },
    in_list: { label: "in list" },
    events: { label: "at least" },
  };
  const OPERATORS_BY_KIND = {
    string: ["is", "is_not", "contains", "empty", "not_empty"],
    enum: ["is", "is_not", "empty", "not_empty"],
    number: ["is", "is_not", "gt", "lt", "empty", "not_empty"],
    boolean: ["is", "is_not"],
    datetime: ["gt", "lt", "empty", "not_empty"],
    tags: ["has_tag"],
    lists: ["in_list"],
    events: ["events"],
  };
  const JSONLOGIC = { is: "==", is_not: "!=", gt: ">", lt: "<", empty: "!", not_empty: "!!" };
  const EVENTS = { path: "@events", label: "Events", group: "Activity", kind: "events" };
  const BOOLEAN_OPTIONS = [[true, "yes"], [false, "no"]];
  const DATETIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d)(:\d\d)?$/;
  const ISO_UTC = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z$/;

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

  function option(value, label, selected) {
    const node = new Option(label, value);
    node.selected = Boolean(selected);
    return node;
  }

  /* JSON text laid out as the console shows a saved rule (Python's separators, one
     condition a line under the top-level and/or), so saving does not reformat it. */
  function jsonText(value) {
    if (Array.isArray(value)) return "[" + value.map(jsonText).join(", ") + "]";
    if (value !== null && typeof value === "object") {
      return "{" + Object.keys(value).map((k) => JSON.stringify(k) + ": " + jsonText(value[k])).join(", ") + "}";
    }
    return JSON.stringify(value);
  }

  function ruleText(rule) {
    if (rule === null) return "";
    const op = Object.keys(rule)[0];
    return '{"' + op + '": [\n  ' + rule[op].map(jsonText).join(",\n  ") + "\n]}";
  }

  function sameJson(a, b) {
    return jsonText(a) === jsonText(b);
  }

  function onlyKey(node) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return null;
    const keys = Object.keys(node);
    return keys.length === 1 ? keys[0] : null;
  }

  class RuleBuilder {
    constructor(textarea, config) {
      this.textarea = textarea;
      this.config = config;
      this.fields = [...config.fields, EVENTS];
      this.byPath = new Map(this.fields.map((f) => [f.path, f]));
      this.rows = [];
      this.combinator = "and";
      this.jsonMode = false;
      this.render();
      this.loadFromText();
      textarea.addEventListener("input", () => this.loadFromText());
      textarea.form.addEventListener("submit", (event) => this.guardSubmit(event));
      const kind = document.getElementById("id_kind");
      if (kind) {
        kind.addEventListener("change", () => this.showForKind(kind.value));
        this.showForKind(kind.value);
      }
    }

    // -- the page ------------------------------------------------------------------------------

    render() {
      const fieldRow = this.textarea.closest(".form-row");
      this.combinatorSelect = el("select", { "aria-label": "Combine the conditions with" }, [
        option("and", "ALL"),
        option("or", "ANY"),
      ]);
      this.combinatorSelect.addEventListener("change", () => {
        this.combinator = this.combinatorSelect.value;
        this.write();
      });
      this.list = el("ul", { className: "rule-builder-rows" });
      this.addButton = el("button", { type: "button", className: "button", text: "+ Add condition" });
      this.addButton.addEventListener("click", () => {
        this.rows.push(this.blankRow());
        this.renderRows();
        this.write();
      });
      this.note = el("p", { className: "rule-builder-note" });
      this.builderPart = el("div", {}, [
        el("p", { className: "rule-builder-combinator" }, [
          "Contacts matching ",
          this.combinatorSelect,
          " of these conditions:",
        ]),
        this.list,
        this.addButton,
        this.note,
      ]);
      const restart = el("button", { type: "button", className: "button", text: "Start a new rule with the builder" });
      restart.addEventListener("click", () => {
        this.jsonMode = false;
        this.combinator = "and";
        this.rows = [this.blankRow()];
        this.textarea.value = "";
        this.show();
      });
      this.jsonPart = el("div", { className: "rule-builder-json" }, [
        el("p", {
          text:
            "This rule is edited as JSON: the builder cannot show it, so it leaves it as it is. " +
            "Edit it in the box below, or start again (that replaces it).",
        }),
        restart,
      ]);
      this.container = el("div", { className: "form-row field-rule-builder" }, [
        el("div", { className: "flex-container" }, [
          el("label", { text: "Conditions:" }),
          el("div", { className: "rule-builder" }, [this.builderPart, this.jsonPart]),
        ]),
      ]);
      fieldRow.before(this.container);

      this.previewButton = el("button", { type: "button", className: "button", text: "Preview" });
      this.previewButton.addEventListener("click", () => this.preview());
      this.previewResult = el("div", { className: "rule-preview-result", "aria-live": "polite" });
      this.previewRow = el("div", { className: "form-row field-rule-preview" }, [
        el("div", { className: "flex-container" }, [
          el("label", { text: "Preview:" }),
          el("div", {}, [
            this.previewButton,
            el("span", { className: "help", text: " How many contacts the rule above selects now." }),
            this.previewResult,
          ]),
        ]),
      ]);
      fieldRow.after(this.previewRow);
    }

    showForKind(kind) {
      const dynamic = kind !== "static";
      this.container.hidden = !dynamic;
      this.previewRow.hidden = !dynamic;
      // A static segment has no rule: hide the box unless it holds one (which saving refuses).
      this.textarea.closest(".form-row").hidden = !dynamic && this.textarea.value.trim() === "";
    }

    fitTextarea() {
      this.textarea.rows = Math.min(24, Math.max(4, this.textarea.value.split("\n").length + 1));
    }

    show() {
      this.builderPart.hidden = this.jsonMode;
      this.jsonPart.hidden = !this.jsonMode;
      this.combinatorSelect.value = this.combinator;
      this.renderRows();
    }

    blankRow() {
      return { path: "", op: "", value: "", count: "1", type: "", days: "30" };
    }

    renderRows() {
      this.list.replaceChildren(...this.rows.map((row, index) => this.renderRow(row, index)));
      this.updateNote();
    }

    renderRow(row, index) {
      const item = el("li", { className: "rule-builder-row" });
      const field = this.byPath.get(row.path);
      const fieldSelect = el("select", { "aria-label": "Field" }, [option("", "— field —", !field)]);
      const groups = new Map();
      this.fields.forEach((f) => {
        if (!groups.has(f.group)) {
          groups.set(f.group, el("optgroup", { label: f.group }));
          fieldSelect.append(groups.get(f.group));
        }
        groups.get(f.group).append(option(f.path, f.label, f.path === row.path));
      });
      fieldSelect.addEventListener("change", () => {
        const next = this.byPath.get(fieldSelect.value);
        Object.assign(row, this.blankRow(), { path: fieldSelect.value, op: next ? OPERATORS_BY_KIND[this.kind(next)][0] : "" });
        this.changed(index);
      });
      item.append(fieldSelect);

      if (field) {
        const kind = this.kind(field);
        const opSelect = el(
          "select",
          { "aria-label": "Operator" },
          OPERATORS_BY_KIND[kind].map((key) =>
            option(key, (kind === "datetime" && OPERATORS[key].datetime) || OPERATORS[key].label, key === row.op),
          ),
        );
        opSelect.addEventListener("change", () => {
          row.op = opSelect.value;
          this.changed(index);
        });
        item.append(opSelect, ...this.valueInputs(row, field, kind));
      }

      const remove = el("button", { type: "button", className: "button rule-builder-remove", text: "Remove", "aria-label": "Remove this condition" });
      remove.addEventListener("click", () => {
        this.rows.splice(index, 1);
        if (!this.rows.length) this.rows.push(this.blankRow());
        this.renderRows();
        this.write();
      });
      item.append(remove);
      if (field && this.condition(row) === undefined) item.classList.add("incomplete");
      return item;
    }

    valueInputs(row, field, kind) {
      const bind = (input, key) => {
        input.value = row[key];
        input.addEventListener("input", () => {
          row[key] = input.value;
          this.write();
          input.closest("li").classList.toggle("incomplete", this.condition(row) === undefined);
        });
        input.addEventListener("change", () => {
          row[key] = input.value;
          this.write();
        });
        return input;
      };
      if (OPERATORS[row.op] && OPERATORS[row.op].noValue) return [];
      if (kind === "events") {
        return [
          bind(el("input", { type: "number", min: "1", step: "1", "aria-label": "How many events" }), "count"),
          " events of type ",
          bind(el("input", { type: "text", placeholder: "page_view", "aria-label": "Event type" }), "type"),
          " in the last ",
          bind(el("input", { type: "number", min: "1", step: "1", "aria-label": "Days" }), "days"),
          " days",
        ];
      }
      if (kind === "enum" || kind === "boolean") {
        const options = kind === "boolean" ? BOOLEAN_OPTIONS : field.options;
        const select = el("select", { "aria-label": "Value" }, [option("", "—")]);
        options.forEach(([value, label]) => select.append(option(JSON.stringify(value), label)));
        return [bind(select, "value")];
      }
      if (kind === "number") return [bind(el("input", { type: "number", step: "any", "aria-label": "Value" }), "value")];
      if (kind === "datetime") {
        return [bind(el("input", { type: "datetime-local", step: "1", "aria-label": "Value (UTC)" }), "value"), " UTC"];
      }
      const input = el("input", { type: "text", "aria-label": "Value" });
      if (kind === "tags" || kind === "lists") input.setAttribute("list", "rule-builder-" + kind);
      return [bind(input, "value")];
    }

    kind(field) {
      if (field.kind === "enum" && !(field.options && field.options.length)) return "string";
      return field.kind;
    }

    changed(index) {
      this.list.children[index].replaceWith(this.renderRow(this.rows[index], index));
      this.updateNote();
      this.write();
    }

    incompleteRows() {
      return this.rows.filter((row) => this.byPath.has(row.path) && this.condition(row) === undefined);
    }

    updateNote() {
      const incomplete = this.incompleteRows().length;
      this.note.classList.toggle("warning", incomplete > 0);
      this.note.textContent = incomplete
        ? `${incomplete} condition(s) need a value; they are not in the rule yet.`
        : "The builder writes the rule into the box below.";
    }

    guardSubmit(event) {
      if (this.jsonMode || this.container.hidden || !this.incompleteRows().length) return;
      event.preventDefault();
      this.renderRows();
      this.note.textContent = "Complete or remove the highlighted conditions before saving.";
      this.note.scrollIntoView({ block: "center" });
    }

    // -- rows <-> JsonLogic ----------------------------------------------------------------------

    /* The JsonLogic of one row, or undefined while it is incomplete. */
    condition(row) {
      const field = this.byPath.get(row.path);
      if (!field) return undefined;
      const kind = this.kind(field);
      if (row.op === "events") {
        const count = Number(row.count);
        const days = Number(row.days);
        const type = row.type.trim();
        if (!type || !Number.isInteger(count) || count < 1 || !Number.isInteger(days) || days < 1) return undefined;
        return { ">=": [{ event_count: [type, null, days] }, count] };
      }
      if (row.op === "has_tag" || row.op === "in_list") {
        const name = row.value.trim();
        return name ? { [row.op]: name } : undefined;
      }
      const variable = { var: field.path };
      if (row.op === "empty" || row.op === "not_empty") return { [JSONLOGIC[row.op]]: variable };
      const value = this.literal(kind, row.value);
      if (value === undefined) return undefined;
      if (row.op === "contains") return { in: [value, variable] };
      return { [JSONLOGIC[row.op]]: [variable, value] };
    }

    literal(kind, text) {
      if (kind === "enum" || kind === "boolean") return text === "" ? undefined : JSON.parse(text);
      if (kind === "number") {
        const number = Number(text);
        return text.trim() === "" || !Number.isFinite(number) ? undefined : number;
      }
      if (kind === "datetime") {
        const match = DATETIME.exec(text);
        return match ? `${match[1]}${match[2] || ":00"}Z` : undefined;
      }
      return text === "" ? undefined : text;
    }

    /* The row showing `node`, or null when no row writes exactly that JSON. */
    parseCondition(node) {
      const op = onlyKey(node);
      if (op === null) return null;
      const args = node[op];
      let row = null;
      if (op === "has_tag" || op === "in_list") {
        row = { path: op === "has_tag" ? "tags" : "lists", op, value: typeof args === "string" ? args : "" };
      } else if (op === ">=" && Array.isArray(args) && onlyKey(args[0]) === "event_count") {
        const [type, , days] = Array.isArray(args[0].event_count) ? args[0].event_count : [];
        row = { path: EVENTS.path, op: "events", type: String(type), days: String(days), count: String(args[1]) };
      } else if (op === "!" || op === "!!") {
        row = { path: onlyKey(args) === "var" ? args.var : "", op: op === "!" ? "empty" : "not_empty" };
      } else if (op === "in" && Array.isArray(args) && onlyKey(args[1]) === "var") {
        row = { path: args[1].var, op: "contains", value: typeof args[0] === "string" ? args[0] : "" };
      } else {
        const key = Object.keys(JSONLOGIC).find((k) => JSONLOGIC[k] === op);
        if (key && Array.isArray(args) && args.length === 2 && onlyKey(args[0]) === "var") {
          const field = this.byPath.get(args[0].var);
          row = { path: args[0].var, op: key, value: field ? this.inputValue(this.kind(field), args[1]) : "" };
        }
      }
      if (row === null) return null;
      row = Object.assign(this.blankRow(), row);
      const field = this.byPath.get(row.path);
      if (!field || !OPERATORS_BY_KIND[this.kind(field)].includes(row.op)) return null;
      const written = this.condition(row);
      return written !== undefined && sameJson(written, node) ? row : null;
    }

    inputValue(kind, literal) {
      if (kind === "enum" || kind === "boolean") return JSON.stringify(literal);
      if (kind === "datetime") {
        const match = typeof literal === "string" ? ISO_UTC.exec(literal) : null;
        return match ? match[1] : "";
      }
      return literal === null || typeof literal === "object" ? "" : String(literal);
    }

    /* {combinator, rows} for a rule, or null when the builder cannot show it exactly. */
    parseRule(rule) {
      if (rule === null) return { combinator: "and", rows: [this.blankRow()] };
      const op = onlyKey(rule);
      if ((op === "and" || op === "or") && Array.isArray(rule[op]) && rule[op].length) {
        const rows = rule[op].map((node) => this.parseCondition(node));
        return rows.includes(null) ? null : { combinator: op, rows };
      }
      const row = this.parseCondition(rule);
      return row ? { combinator: "and", rows: [row] } : null;
    }

    loadFromText() {
      const text = this.textarea.value.trim();
      let parsed = null;
      try {
        parsed = this.parseRule(text === "" ? null : JSON.parse(text));
      } catch (error) {
        parsed = null; // not JSON (yet): the box is being edited by hand
      }
      this.jsonMode = parsed === null;
      this.fitTextarea();
      if (parsed) {
        this.combinator = parsed.combinator;
        this.rows = parsed.rows;
      }
      this.show();
    }

    write() {
      if (this.jsonMode) return;
      const conditions = this.rows.map((row) => this.condition(row)).filter((c) => c !== undefined);
      this.textarea.value = conditions.length ? ruleText({ [this.combinator]: conditions }) : "";
      this.fitTextarea();
      this.updateNote();
    }

    // -- preview -------------------------------------------------------------------------------

    async preview() {
      const body = new FormData();
      body.append("rule", this.textarea.value);
      const token = this.textarea.form.querySelector("[name=csrfmiddlewaretoken]");
      this.previewButton.disabled = true;
      this.previewResult.replaceChildren(el("p", { className: "help", text: "Counting…" }));
      try {
        const response = await fetch(this.config.previewUrl, {
          method: "POST",
          body,
          headers: { "X-CSRFToken": token ? token.value : "" },
          credentials: "same-origin",
        });
        let data = null;
        try {
          data = await response.json();
        } catch (error) {
          data = { errors: [`The preview failed (HTTP ${response.status}).`] };
        }
        this.showPreview(data);
      } catch (error) {
        this.showPreview({ errors: [`The preview failed: ${error.message}`] });
      } finally {
        this.previewButton.disabled = false;
      }
    }

    showPreview(data) {
      if (data.errors) {
        this.previewResult.replaceChildren(
          el("ul", { className: "errorlist" }, data.errors.map((message) => el("li", { text: message }))),
        );
        return;
      }
      const count = el("p", {}, [
        el("strong", { className: "count", text: data.count.toLocaleString() }),
        ` contact${data.count === 1 ? "" : "s"} match now` + (data.sample.length ? `; the first ${data.sample.length}:` : "."),
      ]);
      const parts = [count];
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
      this.previewResult.replaceChildren(...parts);
    }
  }

  function datalist(id, values) {
    return el("datalist", { id }, values.map((value) => el("option", { value })));
  }

  function start() {
    const textarea = document.getElementById("id_rule");
    const configNode = document.getElementById("rule-builder-config");
    if (!textarea || !configNode) return; // read-only page: nothing to build
    const config = JSON.parse(configNode.textContent);
    document.body.append(datalist("rule-builder-tags", config.tags), datalist("rule-builder-lists", config.lists));
    window.ruleBuilder = new RuleBuilder(textarea, config);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
