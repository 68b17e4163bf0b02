/*
 * The canvas's projection: pick a segment and "Project" asks POST /workflows/{id}/projection/
 * what the workflow would do if every member started it now. Each step then shows how many
 * contacts would reach it (a badge), and this panel says the totals in words: contacts, sends,
 * sends the guards would block (no consent, suppressed, no address) and hold (frequency cap,
 * quiet hours), and when the figures come from a sample, its size. The API projects the saved
 * draft when it has steps, else the live version.
 */
import { useEffect, useState } from "react";
import { listOf, request } from "./api.js";
import { useRemembered } from "./remembered.js";

const NUMBER = new Intl.NumberFormat("en");

export function count(n) {
  return NUMBER.format(Number(n) || 0);
}

function plural(n, one, many) {
  return `${count(n)} ${Number(n) === 1 ? one : many}`;
}

/* The answer's totals as one line of words. */
export function projectionSummary(result) {
  const blocked = result.blocked || {};
  const held = result.held || {};
  return [
    plural(result.contacts, "contact", "contacts"),
    plural(result.sends, "send", "sends"),
    `blocked: ${count(blocked.consent)} without consent, ${count(blocked.suppression)} suppressed, ${count(
      blocked.no_address,
    )} without an address`,
    `held: ${count(held.frequency_cap)} by the frequency cap, ${count(held.quiet_hours)} by quiet hours`,
  ].join(" · ");
}

/* The badge on a step: how many of the segment's contacts would reach it. */
export function ProjectedBadge({ value, trigger }) {
  return (
    <div className="canvas-projected" data-projected={Number(value) || 0} title="Projected: contacts that would reach this step">
      {plural(value, "contact", "contacts")}
      {trigger ? " would start" : ""}
    </div>
  );
}

function messagesOf(value) {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
  return [typeof value === "string" ? value : JSON.stringify(value)];
}

export default function ProjectionPanel({ api, workflowId, definition, dirty, result, onResult }) {
  const [segments, setSegments] = useState(null);
  const [segment, setSegment] = useRemembered(`${workflowId}:projection:segment`, "");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState({});

  useEffect(() => {
    let current = true;
    listOf(`${api}segments/`).then((found) => current && setSegments(found));
    return () => {
      current = false;
    };
  }, [api]);

  const project = async () => {
    if (!segment) {
      setErrors({ segment: ["Pick a segment first."] });
      return;
    }
    setBusy(true);
    const answer = await request(`${api}workflows/${workflowId}/projection/`, { method: "POST", body: { segment } });
    setBusy(false);
    if (answer.ok) {
      setErrors({});
      onResult(answer.data);
    } else {
      setErrors(answer.data && typeof answer.data === "object" ? answer.data : { detail: [`HTTP ${answer.status}`] });
      onResult(null);
    }
  };

  const names = new Map((definition?.steps || []).map((s) => [s.id, s.name || s.id]));
  const other = Object.keys(errors).filter((key) => key !== "segment");

  return (
    <div className="canvas-projection canvas-form">
      <h3>Projection</h3>
      <p className="help">
        How many contacts of a segment would reach each step if they all started now: every wait times out and every
        approval is approved. Nothing is sent or saved.
      </p>
      {dirty && (
        <p className="canvas-projection-note" role="note">
          The projection runs on the saved draft: save your changes (“Save draft”) to include them.
        </p>
      )}
      <div className="canvas-field">
        <label htmlFor="projection-segment">Segment</label>
        <select
          id="projection-segment"
          value={segment}
          onChange={(e) => {
            setSegment(e.target.value);
            setErrors({});
          }}
        >
          <option value="">{segments === null ? "Loading…" : "— choose —"}</option>
          {(segments || []).map((s) => (
            <option key={s.slug} value={s.slug}>
              {s.name}
              {typeof s.member_count === "number" ? ` (${plural(s.member_count, "contact", "contacts")})` : ""}
            </option>
          ))}
        </select>
        {segments && !segments.length && <p className="help">No segments yet: make one under Segments.</p>}
        {messagesOf(errors.segment).length > 0 && (
          <ul className="errorlist">
            {messagesOf(errors.segment).map((text, i) => (
              <li key={i}>{text}</li>
            ))}
          </ul>
        )}
      </div>
      {other.map((key) => (
        <ul className="errorlist" key={key}>
          <li>
            {key === "definition" ? "The draft cannot be projected yet: " : ""}
            {messagesOf(errors[key]).join(" ")}
          </li>
        </ul>
      ))}
      <p>
        <button type="button" className="button default" disabled={busy} onClick={project}>
          {busy ? "Projecting…" : "Project"}
        </button>
        {result && (
          <button type="button" className="button" onClick={() => onResult(null)}>
            Clear
          </button>
        )}
      </p>
      {result && (
        <div className="canvas-projection-result" aria-label="Projection result">
          <p className="canvas-projection-summary" role="status">
            {projectionSummary(result)}
          </p>
          {result.sample_size !== null && result.sample_size !== undefined && (
            <p className="canvas-projection-sample">Estimated from a sample of {plural(result.sample_size, "contact", "contacts")}.</p>
          )}
          <table className="canvas-projection-steps">
            <thead>
              <tr>
                <th scope="col">Step</th>
                <th scope="col">Contacts</th>
              </tr>
            </thead>
            <tbody>
              {(definition?.steps || []).map((s) => (
                <tr key={s.id} data-step={s.id}>
                  <td>{names.get(s.id)}</td>
                  <td>{count(result.steps?.[s.id])}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
