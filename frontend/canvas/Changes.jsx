/*
 * The "Changes" tab: what the draft changes from the live version (or between two versions the
 * person picks), from GET workflows/{id}/diff/. The canvas outlines added steps in green and
 * changed ones in amber (changeMarks); this panel lists removed steps with their type, and every
 * change in words, as the publish page does.
 */
import { useEffect, useState } from "react";
import { listOf, request } from "./api.js";
import "./changes.css";

/* step id → "added" | "changed", for the nodes of the canvas (only when the draft is compared). */
export function changeMarks(diff) {
  const marks = new Map();
  if (!diff || diff.to?.version !== null) return marks;
  diff.added.forEach((id) => marks.set(id, "added"));
  diff.changed.forEach((c) => marks.set(c.step, "changed"));
  return marks;
}

/* Which kind of change each sentence of the summary is: the server says added, removed, changed,
   then the first step, the trigger and the settings, in that order. */
function kindsOf(diff) {
  const kinds = [
    ...diff.added.map(() => "added"),
    ...diff.removed.map(() => "removed"),
    ...diff.changed.map(() => "changed"),
  ];
  return diff.summary.map((_, index) => kinds[index] || "other");
}

export default function ChangesPanel({ api, workflowId, savedAt, dirty, onResult }) {
  const [versions, setVersions] = useState(null);
  const [from, setFrom] = useState("live");
  const [to, setTo] = useState("draft");
  const [diff, setDiff] = useState(null);
  const [error, setError] = useState("");

  useEffect(() => {
    listOf(`${api}workflows/${workflowId}/versions/`).then(setVersions);
  }, [api, workflowId, savedAt]);

  useEffect(() => {
    let current = true;
    const query = new URLSearchParams({ from, to });
    request(`${api}workflows/${workflowId}/diff/?${query}`).then((answer) => {
      if (!current) return;
      if (!answer.ok) {
        const first = answer.data && Object.values(answer.data).flat()[0];
        setError(typeof first === "string" ? first : `The changes could not be loaded (HTTP ${answer.status}).`);
        setDiff(null);
        onResult(null);
        return;
      }
      setError("");
      setDiff(answer.data);
      onResult(answer.data);
    });
    return () => {
      current = false;
    };
  }, [api, workflowId, from, to, savedAt]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => () => onResult(null), []); // eslint-disable-line react-hooks/exhaustive-deps

  const live = versions && versions.length ? versions[0].number : null;
  const options = (versions || []).map((v) => (
    <option key={v.number} value={String(v.number)}>
      Version {v.number}
      {v.number === live ? " (live)" : ""}
    </option>
  ));
  const kinds = diff ? kindsOf(diff) : [];

  return (
    <div className="canvas-changes">
      <h3>Changes</h3>
      <div className="canvas-changes-pick">
        <div>
          <label htmlFor="canvas-changes-from">Compare</label>
          <select id="canvas-changes-from" value={from} onChange={(e) => setFrom(e.target.value)}>
            <option value="live">The live version</option>
            {options}
          </select>
        </div>
        <div>
          <label htmlFor="canvas-changes-to">With</label>
          <select id="canvas-changes-to" value={to} onChange={(e) => setTo(e.target.value)}>
            <option value="draft">The draft</option>
            {options}
          </select>
        </div>
      </div>
      {dirty && to === "draft" && (
        <p className="help canvas-changes-unsaved">Unsaved changes on the canvas are not compared: save the draft to include them.</p>
      )}
      {error && (
        <ul className="errorlist">
          <li>{error}</li>
        </ul>
      )}
      {diff && (
        <>
          <p className="help" data-compared>
            {`Comparing ${diff.from.label} with ${diff.to.label}.`}
            {diff.to.version === null
              ? " On the canvas, added steps are outlined in green and changed ones in amber."
              : " The canvas shows the draft, so it marks nothing; the list says what changed."}
          </p>
          {diff.removed.length > 0 && (
            <>
              <h4>Removed steps</h4>
              <ul className="canvas-changes-removed">
                {diff.removed.map((id) => (
                  <li key={id} data-removed={id}>
                    <strong>{diff.steps[id].name || id}</strong>
                    {diff.steps[id].name ? <span className="help"> ({id})</span> : null} — {diff.steps[id].kind}
                  </li>
                ))}
              </ul>
            </>
          )}
          <h4>What changes</h4>
          <ul className="canvas-changes-list" aria-label="What changes">
            {diff.summary.map((line, index) => (
              <li key={index} className={`change-${kinds[index]}`}>
                {line}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
