/* The form of the selected step: its name, and fields generated from the catalog's schema for
   its type (or, for an action step, for its action's config), with the server's errors on the
   fields they name. */
import Form from "@rjsf/core";
import validator from "@rjsf/validator-ajv8";
import { useMemo } from "react";
import { actionItem, edgeFields, stepItem } from "./catalog.js";
import { FIELDS, uiSchemaOf } from "./fields.jsx";

const FIXED = new Set(["id", "type", "name", "position", "action"]);

/* rjsf's error schema for problems whose paths are relative to the form's data. */
function errorSchemaOf(problems) {
  const schema = {};
  problems.forEach(({ path, message }) => {
    let node = schema;
    path
      .replace(/\[(\d+)\]/g, ".$1")
      .split(".")
      .filter(Boolean)
      .forEach((key) => {
        node = node[key] = node[key] || {};
      });
    node.__errors = [...(node.__errors || []), message];
  });
  return schema;
}

/* The item's schema without the fields the panel shows itself (the name; the action picked in the
   palette): they are not the form's. */
function formSchema(schema) {
  if (!schema) return { type: "object", properties: {} };
  const properties = { ...(schema.properties || {}) };
  FIXED.forEach((key) => delete properties[key]);
  const required = (schema.required || []).filter((key) => !FIXED.has(key));
  // The panel's heading names the step already.
  return { ...schema, title: undefined, description: undefined, properties, required };
}

function hasField(schema, path) {
  const key = path.replace(/\[.*$/, "").split(".")[0];
  return Boolean(key && schema && schema.properties && key in schema.properties);
}

export default function StepForm({ catalog, step, problems, onChange, onDelete }) {
  const isAction = step.type === "action";
  const action = isAction ? actionItem(catalog, step.action) : null;
  const item = stepItem(catalog, step.type);
  const schema = useMemo(() => formSchema(isAction ? action && action.schema : item && item.schema), [isAction, action, item]);
  const ui = (isAction ? action && action.ui : item && item.ui) || {};
  const uiSchema = useMemo(() => uiSchemaOf(schema, ui), [schema, ui]);
  const edges = edgeFields(catalog, step);

  const formData = useMemo(() => {
    if (isAction) return step.config || {};
    return Object.fromEntries(Object.entries(step).filter(([k]) => !FIXED.has(k) && !edges.has(k)));
  }, [step, isAction, edges]);

  // Server paths are the step's; the action form holds only `config`.
  const relative = problems.map((p) => ({
    ...p,
    path: isAction ? p.path.replace(/^config\.?/, "") : p.path,
  }));
  const onField = relative.filter((p) => p.path && hasField(schema, p.path));
  const elsewhere = relative.filter((p) => !onField.includes(p));
  const extraErrors = useMemo(() => errorSchemaOf(onField), [JSON.stringify(onField)]); // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <div className="canvas-form" aria-label="Step settings">
      <h3>{isAction ? (action ? action.label : step.action) : item ? item.label : step.type}</h3>
      {(isAction ? action : item)?.description && <p className="help">{(isAction ? action : item).description}</p>}
      {elsewhere.length > 0 && (
        <ul className="errorlist">
          {elsewhere.map((p, i) => (
            <li key={i}>{p.path ? `${p.path}: ${p.message}` : p.message}</li>
          ))}
        </ul>
      )}
      <div className="canvas-field">
        <label className="canvas-field-label" htmlFor="canvas-step-name">
          Name on the canvas
        </label>
        <input
          id="canvas-step-name"
          type="text"
          maxLength={200}
          value={step.name || ""}
          onChange={(e) => {
            const next = { ...step, name: e.target.value };
            if (!e.target.value) delete next.name;
            onChange(next);
          }}
        />
        <p className="help">Step id: {step.id}</p>
      </div>
      {isAction && !action && (
        <p className="help">
          This action’s form is not available here; edit its settings in the “Advanced (JSON)” tab.
        </p>
      )}
      <Form
        key={`${step.id}:${step.action || ""}`}
        schema={schema}
        uiSchema={uiSchema}
        formData={formData}
        validator={validator}
        fields={FIELDS}
        extraErrors={extraErrors}
        showErrorList={false}
        noHtml5Validate
        idPrefix={`step-${step.id}`}
        onChange={({ formData: data }) => {
          if (isAction) onChange({ ...step, config: data || {} });
          else {
            // The step's keys stay in their order, so the JSON changes only where the form did.
            const next = {};
            Object.keys(step).forEach((k) => {
              if (FIXED.has(k) || edges.has(k)) next[k] = step[k];
              else if (data && data[k] !== undefined) next[k] = data[k];
            });
            Object.entries(data || {}).forEach(([k, v]) => {
              if (!(k in next) && v !== undefined) next[k] = v;
            });
            onChange(next);
          }
        }}
      />
      <p>
        <button type="button" className="button canvas-delete" onClick={onDelete}>
          Delete this step
        </button>
      </p>
    </div>
  );
}
