/* The form of the trigger ("Starts when"): a choice among the catalog's triggers, then the fields
   of the one chosen, generated from its schema like a step's, with the server's errors on the
   fields they name. Choosing another trigger starts its fields afresh. */
import Form from "@rjsf/core";
import validator from "@rjsf/validator-ajv8";
import { useMemo } from "react";
import { FIELDS, uiSchemaOf } from "./fields.jsx";

export default function TriggerForm({ catalog, trigger, problems, onChange }) {
  const current = trigger || { type: "manual" };
  const item = catalog.triggers.find((t) => t.name === current.type);
  const schema = useMemo(
    () => (item ? { ...item.schema, title: undefined, description: undefined } : { type: "object", properties: {} }),
    [item],
  );
  const uiSchema = useMemo(() => uiSchemaOf(schema, item ? item.ui : {}), [schema, item]);
  const formData = useMemo(() => Object.fromEntries(Object.entries(current).filter(([k]) => k !== "type")), [current]);
  // Server paths are the definition's ("trigger.event"); the form holds the trigger's fields.
  const mine = problems.map((p) => ({ ...p, path: (p.path || "").replace(/^trigger\.?/, "") }));
  const extraErrors = useMemo(() => {
    const errors = {};
    mine.forEach(({ path, message }) => {
      const key = path.split(".")[0];
      if (key && schema.properties && key in schema.properties) {
        errors[key] = { __errors: [...(errors[key]?.__errors || []), message] };
      }
    });
    return errors;
  }, [JSON.stringify(mine), schema]); // eslint-disable-line react-hooks/exhaustive-deps
  const elsewhere = mine.filter((p) => !(p.path && schema.properties && p.path.split(".")[0] in schema.properties));

  return (
    <div className="canvas-form" aria-label="Trigger settings">
      <h3>Starts when</h3>
      {elsewhere.length > 0 && (
        <ul className="errorlist">
          {elsewhere.map((p, i) => (
            <li key={i}>{p.message}</li>
          ))}
        </ul>
      )}
      <div className="canvas-field">
        <label className="canvas-field-label" htmlFor="canvas-trigger-type">
          Trigger
        </label>
        <select id="canvas-trigger-type" value={current.type} onChange={(e) => onChange({ type: e.target.value })}>
          {!item && <option value={current.type}>{current.type}</option>}
          {catalog.triggers.map((t) => (
            <option key={t.name} value={t.name}>
              {t.label}
            </option>
          ))}
        </select>
        {item?.description && <p className="help">{item.description}</p>}
      </div>
      {item && (
        <Form
          key={current.type}
          schema={schema}
          uiSchema={uiSchema}
          formData={formData}
          validator={validator}
          fields={FIELDS}
          extraErrors={extraErrors}
          showErrorList={false}
          noHtml5Validate
          idPrefix="trigger"
          onChange={({ formData: data }) => {
            const next = { type: current.type };
            Object.entries(data || {}).forEach(([k, v]) => {
              if (v !== undefined) next[k] = v;
            });
            onChange(next);
          }}
        />
      )}
    </div>
  );
}
