/*
 * A rule as the builder shows it: a list of conditions joined by ALL (and) or ANY (or), each one
 * a row {path, op, value, count, type, days}, and back to JsonLogic. A rule the rows cannot show
 * exactly parses to null, and the caller keeps it as JSON.
 */

export const OPERATORS = {
  is: { label: "is" },
  is_not: { label: "is not" },
  contains: { label: "contains" },
  gt: { label: "greater than", datetime: "after" },
  lt: { label: "less than", datetime: "before" },
  gte: { label: "at least (≥)", datetime: "on or after" },
  lte: { label: "at most (≤)", datetime: "on or before" },
  empty: { label: "is empty", noValue: true },
  not_empty: { label: "is not empty", noValue: true },
  has_tag: { label: "has tag" },
  in_list: { label: "in list" },
  events: { label: "at least" },
};
export const OPERATORS_BY_KIND = {
  string: ["is", "is_not", "contains", "empty", "not_empty"],
  enum: ["is", "is_not", "empty", "not_empty"],
  number: ["is", "is_not", "gt", "gte", "lt", "lte", "empty", "not_empty"],
  boolean: ["is", "is_not"],
  datetime: ["gt", "gte", "lt", "lte", "empty", "not_empty"],
  tags: ["has_tag"],
  lists: ["in_list"],
  events: ["events"],
};
const JSONLOGIC = { is: "==", is_not: "!=", gt: ">", lt: "<", gte: ">=", lte: "<=", empty: "!", not_empty: "!!" };
export const EVENTS = { path: "@events", label: "Events", group: "Activity", kind: "events" };
export const BOOLEAN_OPTIONS = [
  [true, "yes"],
  [false, "no"],
];
const DATETIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d)(:\d\d)?$/;
const ISO_UTC = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z$/;

/* JSON text laid out as the console shows a saved rule (Python's separators, one condition a
   line under the top-level and/or), so saving does not reformat it. */
export function jsonText(value) {
  if (Array.isArray(value)) return "[" + value.map(jsonText).join(", ") + "]";
  if (value !== null && typeof value === "object") {
    return "{" + Object.keys(value).map((k) => JSON.stringify(k) + ": " + jsonText(value[k])).join(", ") + "}";
  }
  return JSON.stringify(value);
}

export function ruleText(rule) {
  if (rule === null) return "";
  const op = Object.keys(rule)[0];
  return '{"' + op + '": [\n  ' + rule[op].map(jsonText).join(",\n  ") + "\n]}";
}

function onlyKey(node) {
  if (node === null || typeof node !== "object" || Array.isArray(node)) return null;
  const keys = Object.keys(node);
  return keys.length === 1 ? keys[0] : null;
}

export function blankRow() {
  return { path: "", op: "", value: "", count: "1", type: "", days: "30" };
}

const KINDS = new Set(["string", "enum", "number", "boolean", "datetime", "tags", "lists"]);

/* A field as the builder shows it ({path, label, group, kind, options: [[value, label]]}), from
   either shape: the builder's own or the conditions/fields API's ({type, choices: [{value, label}]}).
   Fields of a kind no row can edit (lists of values, objects) are left out. */
export function builderField(field) {
  if (field.kind) return field;
  const entry = { path: field.path, label: field.label, group: field.group, kind: field.type };
  if (field.choices) entry.options = field.choices.map((c) => [c.value, c.label]);
  return entry;
}

/* The fields a rule can use: the server's list and the events pseudo-field, by path. */
export function fieldIndex(fields) {
  const all = [...(fields || []).map(builderField).filter((f) => KINDS.has(f.kind)), EVENTS];
  return { all, byPath: new Map(all.map((f) => [f.path, f])) };
}

export function kindOf(field) {
  if (field.kind === "enum" && !(field.options && field.options.length)) return "string";
  return field.kind;
}

function literal(kind, text) {
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

function inputValue(kind, value) {
  if (kind === "enum" || kind === "boolean") return JSON.stringify(value);
  if (kind === "datetime") {
    const match = typeof value === "string" ? ISO_UTC.exec(value) : null;
    return match ? match[1] : "";
  }
  return value === null || typeof value === "object" ? "" : String(value);
}

/* The JsonLogic of one row, or undefined while it is incomplete. */
export function condition(row, byPath) {
  const field = byPath.get(row.path);
  if (!field) return undefined;
  const kind = kindOf(field);
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
  const value = literal(kind, row.value);
  if (value === undefined) return undefined;
  if (row.op === "contains") return { in: [value, variable] };
  return { [JSONLOGIC[row.op]]: [variable, value] };
}

/* The row showing `node`, or null when no row writes exactly that JSON. */
function parseCondition(node, byPath) {
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
      const field = byPath.get(args[0].var);
      row = { path: args[0].var, op: key, value: field ? inputValue(kindOf(field), args[1]) : "" };
    }
  }
  if (row === null) return null;
  row = Object.assign(blankRow(), row);
  const field = byPath.get(row.path);
  if (!field || !OPERATORS_BY_KIND[kindOf(field)].includes(row.op)) return null;
  const written = condition(row, byPath);
  return written !== undefined && jsonText(written) === jsonText(node) ? row : null;
}

/* {combinator, rows} for a rule, or null when the builder cannot show it exactly. */
export function parseRule(rule, byPath) {
  if (rule === null || rule === undefined) return { combinator: "and", rows: [blankRow()] };
  const op = onlyKey(rule);
  if ((op === "and" || op === "or") && Array.isArray(rule[op]) && rule[op].length) {
    const rows = rule[op].map((node) => parseCondition(node, byPath));
    return rows.includes(null) ? null : { combinator: op, rows };
  }
  const row = parseCondition(rule, byPath);
  return row ? { combinator: "and", rows: [row] } : null;
}

/* The rule the rows write (null when no row is complete). */
export function buildRule(combinator, rows, byPath) {
  const conditions = rows.map((row) => condition(row, byPath)).filter((c) => c !== undefined);
  return conditions.length ? { [combinator]: conditions } : null;
}

export function incompleteRows(rows, byPath) {
  return rows.filter((row) => byPath.has(row.path) && condition(row, byPath) === undefined);
}
