/*
 * The rule builder, shared by the segment page and every condition of the workflow canvas: rows
 * of "field, operator, value" joined by ALL or ANY. It edits `value` (a JsonLogic rule or null)
 * and calls `onChange(rule)` with the rule the complete rows write. A rule the rows cannot show
 * exactly is left alone ("edited as JSON") until the person starts a new one.
 *
 * Everything from the server is rendered by React as text, never as HTML.
 */
import { useEffect, useId, useMemo, useRef, useState } from "react";
import {
  BOOLEAN_OPTIONS,
  OPERATORS,
  OPERATORS_BY_KIND,
  blankRow,
  buildRule,
  condition,
  fieldIndex,
  incompleteRows,
  jsonText,
  kindOf,
  parseRule,
} from "./rules.js";

function stateFor(value, byPath) {
  const parsed = parseRule(value, byPath);
  return parsed ? { ...parsed, jsonMode: false } : { combinator: "and", rows: [blankRow()], jsonMode: true };
}

export default function RuleBuilder({
  value,
  onChange,
  fields,
  tags = [],
  lists = [],
  eventTypes = [],
  onStatus,
  idPrefix,
}) {
  const { all, byPath } = useMemo(() => fieldIndex(fields), [fields]);
  const [state, setState] = useState(() => stateFor(value, byPath));
  const emitted = useRef(jsonText(value ?? null));
  const uid = (idPrefix || "rb") + useId().replace(/:/g, "");

  // A value changed from outside (the JSON box, another tab) is shown afresh.
  useEffect(() => {
    const text = jsonText(value ?? null);
    if (text !== emitted.current) {
      emitted.current = text;
      setState(stateFor(value, byPath));
    }
  }, [value, byPath]);

  const incomplete = incompleteRows(state.rows, byPath).length;
  useEffect(() => {
    if (onStatus) onStatus({ incomplete, jsonMode: state.jsonMode });
  }, [incomplete, state.jsonMode, onStatus]);

  function update(next) {
    setState(next);
    if (next.jsonMode) return;
    const rule = buildRule(next.combinator, next.rows, byPath);
    emitted.current = jsonText(rule);
    onChange(rule);
  }

  function setRow(index, patch) {
    const rows = state.rows.map((row, i) => (i === index ? { ...row, ...patch } : row));
    update({ ...state, rows });
  }

  if (state.jsonMode) {
    return (
      <div className="rule-builder">
        <div className="rule-builder-json">
          <p>
            This rule is edited as JSON: the builder cannot show it, so it leaves it as it is. Edit it in the box
            below, or start again (that replaces it).
          </p>
          <button
            type="button"
            className="button"
            onClick={() => update({ combinator: "and", rows: [blankRow()], jsonMode: false })}
          >
            Start a new rule with the builder
          </button>
        </div>
      </div>
    );
  }

  const groups = [];
  all.forEach((f) => {
    let group = groups.find((g) => g.name === f.group);
    if (!group) groups.push((group = { name: f.group, fields: [] }));
    group.fields.push(f);
  });

  return (
    <div className="rule-builder">
      <p className="rule-builder-combinator">
        Contacts matching{" "}
        <select
          aria-label="Combine the conditions with"
          value={state.combinator}
          onChange={(e) => update({ ...state, combinator: e.target.value })}
        >
          <option value="and">ALL</option>
          <option value="or">ANY</option>
        </select>{" "}
        of these conditions:
      </p>
      <ul className="rule-builder-rows">
        {state.rows.map((row, index) => {
          const field = byPath.get(row.path);
          const kind = field ? kindOf(field) : null;
          const done = !field || condition(row, byPath) !== undefined;
          return (
            <li key={index} className={"rule-builder-row" + (done ? "" : " incomplete")}>
              <select
                aria-label="Field"
                value={field ? row.path : ""}
                onChange={(e) => {
                  const next = byPath.get(e.target.value);
                  setRow(index, {
                    ...blankRow(),
                    path: e.target.value,
                    op: next ? OPERATORS_BY_KIND[kindOf(next)][0] : "",
                  });
                }}
              >
                <option value="">— field —</option>
                {groups.map((group) => (
                  <optgroup key={group.name} label={group.name}>
                    {group.fields.map((f) => (
                      <option key={f.path} value={f.path}>
                        {f.label}
                      </option>
                    ))}
                  </optgroup>
                ))}
              </select>
              {field && (
                <select aria-label="Operator" value={row.op} onChange={(e) => setRow(index, { op: e.target.value })}>
                  {OPERATORS_BY_KIND[kind].map((key) => (
                    <option key={key} value={key}>
                      {(kind === "datetime" && OPERATORS[key].datetime) || OPERATORS[key].label}
                    </option>
                  ))}
                </select>
              )}
              {field && (
                <ValueInputs
                  row={row}
                  field={field}
                  kind={kind}
                  uid={uid}
                  known={{ tags, lists }}
                  set={(p) => setRow(index, p)}
                />
              )}
              <button
                type="button"
                className="button rule-builder-remove"
                aria-label="Remove this condition"
                onClick={() => {
                  const rows = state.rows.filter((_, i) => i !== index);
                  update({ ...state, rows: rows.length ? rows : [blankRow()] });
                }}
              >
                Remove
              </button>
            </li>
          );
        })}
      </ul>
      <button
        type="button"
        className="button"
        onClick={() => update({ ...state, rows: [...state.rows, blankRow()] })}
      >
        + Add condition
      </button>
      <p className={"rule-builder-note" + (incomplete ? " warning" : "")}>
        {incomplete
          ? `${incomplete} condition(s) need a value; they are not in the rule yet.`
          : "The builder writes the rule as you go."}
      </p>
      <datalist id={`${uid}-event-types`}>
        {eventTypes.map((t) => (
          <option key={t} value={t} />
        ))}
      </datalist>
    </div>
  );
}

/* A select of the known values; a value the rule holds that is not among them (a tag since
   deleted, a code typed as JSON) stays as an option of its own, so the rule is kept as it is. */
function PickList({ options, current, bind, label = "Value" }) {
  const known = options.some(([value]) => JSON.stringify(value) === current);
  return (
    <select aria-label={label} {...bind}>
      <option value="">—</option>
      {current !== "" && !known && <option value={current}>{JSON.parse(current)}</option>}
      {options.map(([value, text]) => (
        <option key={JSON.stringify(value)} value={JSON.stringify(value)}>
          {text}
        </option>
      ))}
    </select>
  );
}

function ValueInputs({ row, field, kind, uid, known, set }) {
  if (OPERATORS[row.op] && OPERATORS[row.op].noValue) return null;
  const bind = (key) => ({ value: row[key], onChange: (e) => set({ [key]: e.target.value }) });
  if (kind === "events") {
    return (
      <>
        <input type="number" min="1" step="1" aria-label="How many events" {...bind("count")} /> events of type{" "}
        <input type="text" placeholder="page_view" aria-label="Event type" list={`${uid}-event-types`} {...bind("type")} />{" "}
        in the last{" "}
        <input type="number" min="1" step="1" aria-label="Days" {...bind("days")} /> days
      </>
    );
  }
  if (kind === "enum" || kind === "boolean") {
    const options = kind === "boolean" ? BOOLEAN_OPTIONS : field.options;
    return <PickList options={options} current={row.value} bind={bind("value")} />;
  }
  if ((kind === "tags" || kind === "lists") && known[kind].length) {
    // Tag names and list slugs are stored as typed text: the select writes the JSON of one.
    const options = known[kind].map((name) => [name, name]);
    const current = row.value === "" ? "" : JSON.stringify(row.value);
    return (
      <PickList
        options={options}
        current={current}
        bind={{ value: current, onChange: (e) => set({ value: e.target.value === "" ? "" : JSON.parse(e.target.value) }) }}
      />
    );
  }
  if (kind === "number") return <input type="number" step="any" aria-label="Value" {...bind("value")} />;
  if (kind === "datetime") {
    return (
      <>
        <input type="datetime-local" step="1" aria-label="Value (UTC)" {...bind("value")} /> UTC
      </>
    );
  }
  return <input type="text" aria-label="Value" {...bind("value")} />;
}
