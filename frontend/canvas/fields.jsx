/*
 * Form fields for the catalog's `ui` hints, plugged into the JSON-schema forms: pickers of the
 * org's templates, segments, destinations, lists, people and workflows; a duration as number and
 * unit; weekdays; and the rule builder for every condition.
 */
import { useContext, useEffect, useState, createContext } from "react";
import RuleBuilder from "../rules/RuleBuilder.jsx";
import { listOf } from "./api.js";

export const CanvasContext = createContext({ api: "/api/v1/", rules: { fields: [], tags: [], lists: [] } });

const SOURCES = {
  message_template: (channel) => ({ path: "message-templates/", filter: channel ? { channel } : {} }),
  segment: () => ({ path: "segments/" }),
  destination: (channel) => ({ path: "destinations/", filter: channel ? { channel } : {} }),
  workflow: () => ({ path: "workflows/" }),
  list: () => ({ path: "lists/" }),
  user: () => ({ path: "members/" }),
  tag: () => ({ path: "tags/" }),
};
const cache = new Map();

function choicesFor(api, hint) {
  const [, kind, channel] = hint.split(":");
  const source = (SOURCES[kind] || (() => null))(channel);
  if (!source) return Promise.resolve(null);
  const query = new URLSearchParams(source.filter || {}).toString();
  const url = `${api}${source.path}${query ? "?" + query : ""}`;
  if (!cache.has(url)) {
    cache.set(
      url,
      listOf(url).then((items) =>
        items.map((item) => {
          const value = kind === "user" ? item.id : kind === "tag" ? item.name : (item.slug ?? item.id);
          let label = item.name || item.email || String(value);
          if (kind === "user" && item.email) label = `${label} (${item.email})`;
          if (item.status && item.status !== "published" && item.status !== "active") label += ` — ${item.status}`;
          return { value, label };
        }),
      ),
    );
  }
  return cache.get(url);
}

function Label({ props }) {
  const { schema, fieldPathId, required } = props;
  return (
    <label className="canvas-field-label" htmlFor={fieldPathId.$id}>
      {schema.title || props.name}
      {required ? " *" : ""}
    </label>
  );
}

function Help({ schema }) {
  return schema.description ? <p className="help">{schema.description}</p> : null;
}

/* A select of the org's records (one, or several when the field is a list). */
export function RefField(props) {
  const { api } = useContext(CanvasContext);
  const hint = props.uiSchema["ui:options"].hint;
  const [choices, setChoices] = useState(undefined);
  useEffect(() => {
    let live = true;
    choicesFor(api, hint).then((found) => live && setChoices(found));
    return () => {
      live = false;
    };
  }, [api, hint]);
  const many = props.schema.type === "array";
  const numeric = (many ? props.schema.items?.type : props.schema.type) === "integer";
  const cast = (text) => (numeric ? Number(text) : text);
  const change = (value) => props.onChange(value, props.fieldPathId.path);
  const id = props.fieldPathId.$id;
  let control;
  if (choices === undefined) control = <span className="help">Loading…</span>;
  else if (choices === null || (!choices.length && !props.formData)) {
    control = choices ? (
      <span className="help">None yet: create one first.</span>
    ) : (
      <input id={id} type="text" value={props.formData ?? ""} onChange={(e) => change(e.target.value || undefined)} />
    );
  } else if (many) {
    const chosen = new Set((props.formData || []).map(String));
    control = (
      <select
        id={id}
        multiple
        value={[...chosen]}
        onChange={(e) => change([...e.target.selectedOptions].map((o) => cast(o.value)))}
      >
        {choices.map((c) => (
          <option key={c.value} value={String(c.value)}>
            {c.label}
          </option>
        ))}
      </select>
    );
  } else {
    const known = choices.some((c) => String(c.value) === String(props.formData));
    control = (
      <select id={id} value={props.formData ?? ""} onChange={(e) => change(e.target.value === "" ? undefined : cast(e.target.value))}>
        <option value="">— choose —</option>
        {!known && props.formData != null && <option value={String(props.formData)}>{String(props.formData)} (not found)</option>}
        {choices.map((c) => (
          <option key={c.value} value={String(c.value)}>
            {c.label}
          </option>
        ))}
      </select>
    );
  }
  return (
    <div className="canvas-field">
      <Label props={props} />
      {control}
      <Help schema={props.schema} />
    </div>
  );
}

const UNITS = [
  ["M", "minutes", "PT"],
  ["H", "hours", "PT"],
  ["D", "days", "P"],
  ["W", "weeks", "P"],
];
const DURATION = /^P(?:(\d+)([DW]))?(?:T(\d+)([HM]))?$/;

function durationParts(text) {
  const match = DURATION.exec(text || "");
  if (!match || (match[1] && match[3])) return null;
  return match[1] ? { amount: match[1], unit: match[2] } : match[3] ? { amount: match[3], unit: match[4] } : null;
}

/* An ISO-8601 duration as a number and a unit ("2 days" = "P2D"). */
export function DurationField(props) {
  const value = props.formData;
  const parts = durationParts(value);
  const [draft, setDraft] = useState(parts || { amount: "", unit: "D" });
  useEffect(() => {
    const fresh = durationParts(value);
    if (fresh && (fresh.amount !== draft.amount || fresh.unit !== draft.unit)) setDraft(fresh);
  }, [value]); // eslint-disable-line react-hooks/exhaustive-deps
  const id = props.fieldPathId.$id;
  const write = (next) => {
    setDraft(next);
    const amount = Number(next.amount);
    const prefix = UNITS.find((u) => u[0] === next.unit)[2];
    props.onChange(
      next.amount !== "" && Number.isInteger(amount) && amount > 0 ? `${prefix}${amount}${next.unit}` : undefined,
      props.fieldPathId.path,
    );
  };
  const odd = value && !parts;
  return (
    <div className="canvas-field">
      <Label props={props} />
      <span className="canvas-duration">
        <input
          id={id}
          type="number"
          min="1"
          step="1"
          aria-label={`${props.schema.title || props.name}: how many`}
          value={draft.amount}
          onChange={(e) => write({ ...draft, amount: e.target.value })}
        />
        <select
          aria-label={`${props.schema.title || props.name}: unit`}
          value={draft.unit}
          onChange={(e) => write({ ...draft, unit: e.target.value })}
        >
          {UNITS.map(([unit, label]) => (
            <option key={unit} value={unit}>
              {label}
            </option>
          ))}
        </select>
      </span>
      {odd && <p className="help">Now “{value}” (set in JSON); choosing here replaces it.</p>}
      <Help schema={props.schema} />
    </div>
  );
}

const WEEKDAYS = [
  ["mon", "Mon"],
  ["tue", "Tue"],
  ["wed", "Wed"],
  ["thu", "Thu"],
  ["fri", "Fri"],
  ["sat", "Sat"],
  ["sun", "Sun"],
];

export function WeekdaysField(props) {
  const chosen = new Set(props.formData || []);
  const allowed = props.schema.items?.enum || WEEKDAYS.map((d) => d[0]);
  return (
    <div className="canvas-field">
      <Label props={props} />
      <span className="canvas-weekdays">
        {WEEKDAYS.filter(([d]) => allowed.includes(d)).map(([day, label]) => (
          <label key={day}>
            <input
              type="checkbox"
              checked={chosen.has(day)}
              onChange={(e) => {
                const next = new Set(chosen);
                if (e.target.checked) next.add(day);
                else next.delete(day);
                props.onChange(
                  allowed.filter((d) => next.has(d)),
                  props.fieldPathId.path,
                );
              }}
            />
            {label}
          </label>
        ))}
      </span>
      <Help schema={props.schema} />
    </div>
  );
}

/* Every condition of a step: the same rule builder as the segment page. */
export function RuleField(props) {
  const { rules } = useContext(CanvasContext);
  return (
    <div className="canvas-field canvas-rule">
      <Label props={props} />
      <RuleBuilder
        value={props.formData ?? null}
        fields={rules.fields}
        tags={rules.tags}
        lists={rules.lists}
        onChange={(rule) => props.onChange(rule ?? undefined, props.fieldPathId.path)}
      />
      <Help schema={props.schema} />
    </div>
  );
}

/* Known values offered as the person types, for a field that also takes new ones: the org's
   event types (stored and built in) and the contact fields a step may read. */
function suggestionsFor(api, rules, hint) {
  if (hint === "contact_field") {
    return Promise.resolve((rules.fields || []).map((f) => ({ value: f.path, label: f.label || f.path })));
  }
  if (hint !== "event_type") return Promise.resolve([]);
  const url = `${api}event-types/`;
  if (!cache.has(url)) cache.set(url, listOf(url).then((items) => items.map((t) => ({ value: t.type, label: t.label || t.type }))));
  return cache.get(url);
}

export function TextHintField(props) {
  const { api, rules } = useContext(CanvasContext);
  const hint = props.uiSchema["ui:options"].hint;
  const type = hint === "local_time" ? "time" : "text";
  const [suggestions, setSuggestions] = useState([]);
  useEffect(() => {
    let live = true;
    suggestionsFor(api, rules, hint).then((found) => live && setSuggestions(found));
    return () => {
      live = false;
    };
  }, [api, rules, hint]);
  const listId = suggestions.length ? `${props.fieldPathId.$id}-known` : undefined;
  return (
    <div className="canvas-field">
      <Label props={props} />
      <input
        id={props.fieldPathId.$id}
        type={type}
        list={listId}
        value={props.formData ?? ""}
        placeholder={hint === "event_type" ? "form_submitted" : hint === "contact_field" ? "email" : undefined}
        onChange={(e) => props.onChange(e.target.value === "" ? undefined : e.target.value, props.fieldPathId.path)}
      />
      {listId && (
        <datalist id={listId}>
          {suggestions.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </datalist>
      )}
      <Help schema={props.schema} />
    </div>
  );
}

export const FIELDS = {
  ref: RefField,
  duration: DurationField,
  weekdays: WeekdaysField,
  rule: RuleField,
  text_hint: TextHintField,
};

/* The rjsf uiSchema for a catalog item's `ui` map ({"config.duration": "duration",
   "cases[].when": "rule:contact"}), walking the schema so arrays get `items`. */
export function uiSchemaOf(schema, ui, prefix) {
  const uiSchema = { "ui:submitButtonOptions": { norender: true } };
  Object.entries(ui || {}).forEach(([path, hint]) => {
    let keys = path.replace(/\[\]/g, ".[]").split(".").filter(Boolean);
    if (prefix) {
      if (keys[0] !== prefix) return;
      keys = keys.slice(1);
    }
    let node = uiSchema;
    let sub = schema;
    keys.forEach((key) => {
      if (key === "[]") {
        node = node.items = node.items || {};
        sub = sub && sub.items;
      } else {
        node = node[key] = node[key] || {};
        sub = sub && sub.properties && sub.properties[key];
        if (sub && sub.type === "array" && !keys.includes("[]") && key !== keys[keys.length - 1]) {
          node = node.items = node.items || {};
          sub = sub.items;
        }
      }
    });
    const kind = hint.split(":")[0];
    const field = kind === "ref" ? "ref" : kind === "rule" ? "rule" : FIELDS[kind] ? kind : "text_hint";
    node["ui:field"] = field;
    node["ui:options"] = { hint };
  });
  return uiSchema;
}
