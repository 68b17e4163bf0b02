/*
 * The catalog of step types, actions and triggers (GET workflows/catalog/), and the edges of a
 * step read from it: one handle per exit, each with its label. When the server has no catalog,
 * a built-in one names the step types and their exits, with the simplest forms.
 */
import { request } from "./api.js";

const RULE = { type: "object", title: "Condition" };
const DURATION = { type: "string", title: "How long" };

const FALLBACK_STEPS = [
  {
    type: "condition",
    label: "If / else",
    description: "Goes one way when the contact matches the condition, the other way when not.",
    schema: { type: "object", properties: { condition: RULE } },
    ui: { condition: "rule:contact" },
    edges: [
      { field: "true_next", label: "Yes" },
      { field: "false_next", label: "No" },
    ],
  },
  {
    type: "delay",
    label: "Wait",
    description: "Waits for a while before going on.",
    schema: {
      type: "object",
      properties: { config: { type: "object", title: "Wait", properties: { duration: { ...DURATION, title: "Wait for" } } } },
    },
    ui: { "config.duration": "duration" },
    edges: [{ field: "next", label: "Next" }],
  },
  {
    type: "wait_for_event",
    label: "Wait for an event",
    description: "Waits until the contact does something, or gives up after a while.",
    schema: {
      type: "object",
      properties: { event: { type: "string", title: "Event type" }, timeout: { ...DURATION, title: "Give up after" } },
    },
    ui: { event: "event_type", timeout: "duration" },
    edges: [
      { field: "next", label: "Arrived" },
      { field: "timeout_next", label: "Timeout" },
    ],
  },
  {
    type: "switch",
    label: "Switch",
    description: "Goes along the first case the contact matches.",
    schema: {
      type: "object",
      properties: {
        cases: {
          type: "array",
          title: "Cases",
          items: { type: "object", properties: { name: { type: "string", title: "Name" }, when: RULE } },
        },
      },
    },
    ui: { "cases[].when": "rule:contact" },
    edges: [
      { array: "cases", field: "next", label_from: "name" },
      { field: "default_next", label: "Otherwise" },
    ],
  },
  {
    type: "split",
    label: "A/B split",
    description: "Sends each contact down one branch, by weight.",
    schema: {
      type: "object",
      properties: {
        branches: {
          type: "array",
          title: "Branches",
          items: {
            type: "object",
            properties: { name: { type: "string", title: "Name" }, weight: { type: "number", title: "Weight" } },
          },
        },
      },
    },
    ui: {},
    edges: [{ array: "branches", field: "next", label_from: "name" }],
  },
  {
    type: "approval",
    label: "Approval",
    description: "Waits for a person to approve or reject.",
    schema: { type: "object", properties: { timeout: { ...DURATION, title: "Give up after" } } },
    ui: { timeout: "duration" },
    edges: [
      { field: "approved_next", label: "Approved" },
      { field: "rejected_next", label: "Rejected" },
      { field: "timeout_next", label: "Timeout" },
    ],
  },
  {
    type: "parallel",
    label: "Parallel",
    description: "Runs several branches at once; each ends at one merge step.",
    schema: { type: "object", properties: {} },
    ui: {},
    edges: [{ array: "branches", field: null, label_from: null }],
  },
  {
    type: "merge",
    label: "Merge",
    description: "Waits for the parallel branches.",
    schema: {
      type: "object",
      properties: { mode: { title: "Go on when", oneOf: [{ const: "all", title: "all branches are done" }, { const: "any", title: "any branch is done" }] } },
    },
    ui: {},
    edges: [{ field: "next", label: "Next" }],
  },
  {
    type: "goal",
    label: "Goal",
    description: "Checks the goal.",
    schema: { type: "object", properties: { condition: RULE } },
    ui: { condition: "rule:contact" },
    edges: [{ field: "next", label: "Next" }],
  },
  {
    type: "stop",
    label: "Stop",
    description: "Ends the run.",
    schema: { type: "object", properties: { reason: { type: "string", title: "Reason" } } },
    ui: {},
    edges: [],
  },
];
const ACTION_STEP = {
  type: "action",
  label: "Action",
  schema: { type: "object", properties: {} },
  ui: {},
  edges: [
    { field: "next", label: "Next" },
    { field: "on_error", label: "On error" },
  ],
};

/* {steps, actions, triggers, fromServer} */
/* The server's catalog (GET workflows/catalog/, or as the page embedded it) in the canvas's shape. */
export function catalogFrom(data) {
  return { steps: data.steps, actions: data.actions || [], triggers: data.triggers || [], fromServer: true };
}

export async function catalogLoad(api) {
  const answer = await request(`${api}workflows/catalog/`);
  if (answer.ok && answer.data && Array.isArray(answer.data.steps)) return catalogFrom(answer.data);
  return { steps: [ACTION_STEP, ...FALLBACK_STEPS], actions: [], triggers: [], fromServer: false };
}

export function stepItem(catalog, type) {
  return catalog.steps.find((s) => s.type === type) || (type === "action" ? ACTION_STEP : null);
}

export function actionItem(catalog, name) {
  return catalog.actions.find((a) => a.name === name) || null;
}

const SINGULAR = { cases: "Case", branches: "Branch" };

function humanise(text) {
  const words = String(text).replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/* The step's title on the canvas: its name, else what its type or action is called. */
export function stepTitle(catalog, step) {
  if (step.name) return step.name;
  if (step.type === "action") {
    const action = actionItem(catalog, step.action);
    return action ? action.label : humanise(step.action || "action");
  }
  const item = stepItem(catalog, step.type);
  return item ? item.label : humanise(step.type);
}

export function stepKind(catalog, step) {
  if (step.type === "action") {
    const action = actionItem(catalog, step.action);
    return action ? `Action · ${action.name}` : `Action · ${step.action || "?"}`;
  }
  const item = stepItem(catalog, step.type);
  return item ? item.label : step.type;
}

/* The exits of a step: [{handle, label, target}], where handle is the edge's path in the step
   ("next", "cases[1].next", "branches[0]"). */
export function exitsOf(catalog, step) {
  const item = (step.type === "action" && actionItem(catalog, step.action)) || stepItem(catalog, step.type);
  const spec = item ? item.edges || [] : [{ field: "next", label: "Next" }];
  const exits = [];
  spec.forEach((edge) => {
    if (edge.array) {
      const items = Array.isArray(step[edge.array]) ? step[edge.array] : [];
      items.forEach((entry, index) => {
        const own = edge.field && entry && typeof entry === "object";
        const name = own && edge.label_from ? entry[edge.label_from] : null;
        exits.push({
          handle: edge.field ? `${edge.array}[${index}].${edge.field}` : `${edge.array}[${index}]`,
          label: name ? String(name) : `${edge.label || SINGULAR[edge.array] || humanise(edge.array)} ${index + 1}`,
          target: edge.field ? (own ? entry[edge.field] ?? null : null) : typeof entry === "string" ? entry : null,
        });
      });
    } else {
      exits.push({ handle: edge.field, label: edge.label || humanise(edge.field), target: step[edge.field] ?? null });
    }
  });
  return exits;
}

/* The step with the exit at `handle` pointing to `target` (null removes the link). */
export function exitSet(step, handle, target) {
  const copy = structuredClone(step);
  const match = /^(\w+)\[(\d+)\](?:\.(\w+))?$/.exec(handle);
  if (!match) {
    copy[handle] = target;
    return copy;
  }
  const [, array, index, field] = match;
  copy[array] = Array.isArray(copy[array]) ? copy[array] : [];
  if (field) copy[array][Number(index)] = { ...(copy[array][Number(index)] || {}), [field]: target };
  else copy[array][Number(index)] = target;
  return copy;
}

/* Fields of a step that are edges, not form fields. */
export function edgeFields(catalog, step) {
  const item = (step.type === "action" && actionItem(catalog, step.action)) || stepItem(catalog, step.type);
  return new Set((item ? item.edges || [] : []).filter((e) => !e.array).map((e) => e.field));
}
