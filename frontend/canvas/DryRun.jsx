/*
 * The canvas's dry run: pick a contact (searched by name or email) and a simulated start, and
 * the steps the run would take are listed here and highlighted on the canvas. What runs is the
 * definition on the screen, saved or not; nothing is sent or written.
 */
import { useEffect, useState } from "react";
import { request } from "./api.js";

/* "2026-12-07T12:00" in the browser's time zone, as a datetime-local input wants it. */
function localNow() {
  const now = new Date();
  now.setSeconds(0, 0);
  return new Date(now.getTime() - now.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/* An action's preview as short "key: value" lines: what it would have done. */
function previewLines(preview) {
  if (!preview || typeof preview !== "object") return [String(preview ?? "")];
  return Object.entries(preview)
    .filter(([key]) => key !== "guard")
    .map(([key, value]) => `${key.replace(/_/g, " ")}: ${typeof value === "object" ? JSON.stringify(value) : value}`);
}

/* The outbox guards' verdict on a send: {verdict: send | block | hold, kind, reason, until}. */
function guardText(guard) {
  if (!guard || typeof guard !== "object") return "";
  if (guard.verdict === "send") return "Would be sent.";
  const why = guard.reason || guard.kind || "";
  if (guard.verdict === "hold") return `Would be held${guard.until ? ` until ${when(guard.until)}` : ""}${why ? `: ${why}` : "."}`;
  return `Would not be sent${why ? `: ${why}` : "."}`;
}

function ContactPicker({ api, contact, onPick }) {
  const [query, setQuery] = useState("");
  const [found, setFound] = useState([]);
  useEffect(() => {
    if (query.trim().length < 2) {
      setFound([]);
      return undefined;
    }
    let current = true;
    const timer = setTimeout(async () => {
      const answer = await request(`${api}contacts/?search=${encodeURIComponent(query.trim())}&page_size=8`);
      if (current && answer.ok) setFound(Array.isArray(answer.data) ? answer.data : answer.data?.results || []);
    }, 250);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [api, query]);
  const label = (c) => [c.first_name, c.last_name].filter(Boolean).join(" ") || c.email || `contact #${c.id}`;
  return (
    <div className="canvas-field">
      <label htmlFor="dry-run-contact">Contact</label>
      {contact ? (
        <p className="canvas-dry-contact">
          <strong>{label(contact)}</strong> {contact.email && <span className="help">{contact.email}</span>}{" "}
          <button type="button" className="button" onClick={() => onPick(null)}>
            Change
          </button>
        </p>
      ) : (
        <>
          <input
            id="dry-run-contact"
            type="text"
            value={query}
            placeholder="Name or email"
            autoComplete="off"
            onChange={(e) => setQuery(e.target.value)}
          />
          <ul className="canvas-dry-found" role="listbox" aria-label="Matching contacts">
            {found.map((c) => (
              <li key={c.id} role="option" aria-selected="false" onClick={() => onPick(c)}>
                {label(c)} {c.email && <span className="help">{c.email}</span>}
              </li>
            ))}
          </ul>
          {query.trim().length >= 2 && !found.length && <p className="help">No contact matches yet.</p>}
        </>
      )}
    </div>
  );
}

export default function DryRunPanel({ api, workflowId, definition, result, onResult, describe }) {
  const [contact, setContact] = useState(null);
  const [start, setStart] = useState(localNow);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState({});

  const run = async () => {
    if (!contact) {
      setErrors({ contact_id: ["Pick a contact first."] });
      return;
    }
    setBusy(true);
    const body = { contact_id: contact.id, definition };
    if (start) body.start = new Date(start).toISOString();
    const answer = await request(`${api}workflows/${workflowId}/dry-run/`, { method: "POST", body });
    setBusy(false);
    if (answer.ok) {
      setErrors({});
      onResult(answer.data);
    } else {
      setErrors(answer.data && typeof answer.data === "object" ? answer.data : { detail: [`HTTP ${answer.status}`] });
      onResult(null);
    }
  };

  const fieldErrors = (name) => {
    const list = errors[name];
    if (!list) return null;
    return (
      <ul className="errorlist">
        {(Array.isArray(list) ? list : [typeof list === "string" ? list : JSON.stringify(list)]).map((text, i) => (
          <li key={i}>{String(text)}</li>
        ))}
      </ul>
    );
  };
  const other = Object.keys(errors).filter((key) => !["contact_id", "start"].includes(key));

  return (
    <div className="canvas-dry canvas-form">
      <h3>Dry run</h3>
      <p className="help">One contact through the steps on the screen, on a simulated clock. Nothing is sent or saved.</p>
      <ContactPicker
        api={api}
        contact={contact}
        onPick={(c) => {
          setContact(c);
          setErrors({});
        }}
      />
      {fieldErrors("contact_id")}
      <div className="canvas-field">
        <label htmlFor="dry-run-start">Simulated start</label>
        <input id="dry-run-start" type="datetime-local" value={start} onChange={(e) => setStart(e.target.value)} />
        {fieldErrors("start")}
      </div>
      {other.map((key) => (
        <ul className="errorlist" key={key}>
          <li>{Array.isArray(errors[key]) ? errors[key].map(String).join(" ") : JSON.stringify(errors[key])}</li>
        </ul>
      ))}
      <p>
        <button type="button" className="button default" disabled={busy} onClick={run}>
          {busy ? "Running…" : "Run dry run"}
        </button>
        {result && (
          <button type="button" className="button" onClick={() => onResult(null)}>
            Clear
          </button>
        )}
      </p>
      {result && <DryRunResult result={result} describe={describe} />}
    </div>
  );
}

function DryRunResult({ result, describe }) {
  const previews = new Map((result.actions || []).map((a) => [`${a.step}@${a.at}`, a.preview]));
  const outcome = result.ended_at
    ? `Finished (${result.result || result.status}) at ${when(result.ended_at)}.`
    : result.waiting_at?.length
      ? `Still waiting at ${result.waiting_at.join(", ")} on ${when(result.simulated_until)}.`
      : `Stopped: ${result.stopped || result.status}.`;
  return (
    <div className="canvas-dry-result" aria-label="Dry run result">
      <p className="canvas-dry-outcome" role="status">
        {outcome}
      </p>
      {result.error && <p className="errorlist">{String(result.error)}</p>}
      <ol className="canvas-dry-path">
        {(result.path || []).map((item, index) => {
          const preview = previews.get(`${item.step}@${item.at}`);
          return (
            <li key={index} data-step={item.step || ""}>
              <strong>{item.name || item.step || "End"}</strong> <span className="help">{when(item.at)}</span>
              <div className="canvas-dry-decision">{item.step ? describe(item.step, item.decision) : item.decision}</div>
              {preview && (
                <ul className="canvas-dry-preview">
                  {previewLines(preview).map((line, i) => (
                    <li key={i}>{line}</li>
                  ))}
                  {guardText(preview.guard) && <li>{guardText(preview.guard)}</li>}
                </ul>
              )}
            </li>
          );
        })}
      </ol>
    </div>
  );
}
