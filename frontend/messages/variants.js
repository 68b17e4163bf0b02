/* A message template's variants as the editor holds them: the list the form's JSON box holds,
   each with a key of the page's own (never saved) so cards keep their identity when one is
   removed. */

export const FIELD_LABELS = {
  subject: "Subject",
  preheader: "Preheader",
  html: "HTML body",
  text: "Text body",
  title: "Title",
  body: "Body",
  url: "Link (URL)",
  payload: "Payload",
};

export const FIELD_HELP = {
  subject: "What the inbox shows first. Liquid works here: {{ first_name | default: \"there\" }}.",
  preheader: "The short line inboxes show after the subject; hidden in the message itself.",
  html: "The email's HTML. Scripts, styles that load files and event handlers are removed when it is sent.",
  text: "For mail apps that show no HTML. Leave it empty to have it made from the HTML.",
  title: "The notification's title.",
  body: "The notification's text.",
  url: "Where a click on the notification goes.",
};

/* A field's label and help on a channel: "text" is the email's plain-text part, elsewhere the message. */
const TEXT_ELSEWHERE = {
  sms: "The SMS itself. Over 160 characters (after merging) it is sent, and billed, as several.",
  push: "",
  slack: "The message as Slack shows it.",
  webhook: "The text sent to the webhook.",
  social: "The post.",
};

export function labelOf(channel, field) {
  if (field === "text" && channel !== "email") return "Message text";
  return FIELD_LABELS[field] || field;
}

export function helpOf(channel, field) {
  if (field === "text" && channel !== "email") return TEXT_ELSEWHERE[channel] || "";
  return FIELD_HELP[field] || "";
}

/* Fields edited with the code editor (several lines, Liquid highlighted); the others are one line. */
export const CODE_FIELDS = new Set(["html", "text", "body"]);

let counter = 0;
export const newKey = () => `v${++counter}`;

/* The box's text as a list of variants, or {error} while it is not a list of objects. */
export function parseVariants(text) {
  const trimmed = text.trim();
  if (trimmed === "") return { list: [] };
  let value;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    return { error: `The JSON is not valid yet (${error.message}); the cards show the last valid variants.` };
  }
  if (!Array.isArray(value) || value.some((v) => !v || typeof v !== "object" || Array.isArray(v))) {
    return { error: "The JSON must be a list of variants ([{…}, {…}]); the cards show the last valid variants." };
  }
  return { list: value };
}

export function variantsText(list) {
  return JSON.stringify(list, null, 2);
}

/* The first letter no variant uses, as names go (A, B, C…). */
export function nextName(list) {
  const used = new Set(list.map((v) => v.name));
  for (let i = 0; i < 26; i += 1) {
    const name = String.fromCharCode(65 + i);
    if (!used.has(name)) return name;
  }
  let n = list.length + 1;
  while (used.has(`Variant ${n}`)) n += 1;
  return `Variant ${n}`;
}

const validWeight = (w) => typeof w === "number" && Number.isFinite(w) && w > 0;

/* Each variant's share of sends in percent (weights are relative), null where a weight is not valid. */
export function shares(list) {
  const total = list.reduce((sum, v) => sum + (validWeight(v.weight) ? v.weight : 0), 0);
  return list.map((v) => (validWeight(v.weight) && total > 0 ? (100 * v.weight) / total : null));
}

/* What the page can tell before the server: names and weights. {field: message} per variant. */
export function localProblems(list) {
  const seen = new Map();
  list.forEach((v) => seen.set(v.name, (seen.get(v.name) || 0) + 1));
  return list.map((v) => {
    const problems = {};
    if (typeof v.name !== "string" || v.name.trim() === "") problems.name = "Give the variant a name (A, B, …).";
    else if (v.name.length > 50) problems.name = "At most 50 characters.";
    else if (seen.get(v.name) > 1) problems.name = "Another variant has this name; names must differ.";
    if (!validWeight(v.weight)) problems.weight = "Enter a number greater than 0.";
    return problems;
  });
}

/* A weight as typed: a number when it reads as one, else the text (the server names the problem). */
export function weightOf(text) {
  if (text.trim() === "") return "";
  const number = Number(text);
  return Number.isFinite(number) ? number : text;
}

/* One variant's problems from the server, as {field: [messages]}; problems of no field under "". */
export function problemsByField(problems) {
  const byField = {};
  problems.forEach((p) => {
    const field = p.field || "";
    const where = p.path ? ` (${p.path})` : "";
    (byField[field] = byField[field] || []).push(p.message + where);
  });
  return byField;
}
