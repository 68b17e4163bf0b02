/*
 * The canvas's dry run: pick a contact (searched by name or email), a simulated start, the events
 * the contact makes along the way ("Add an event": a type from a pick-list and when, after the
 * start) and each approval step's answer, and the steps the run would take are listed here and
 * highlighted on the canvas. What runs is the definition on the screen, saved or not; nothing is
 * sent or written.
 */
import { useEffect, useMemo, useState } from "react";
import { listOf, request } from "./api.js";
import { useRemembered } from "./remembered.js";

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

const APPROVAL_CHOICES = [
  ["approved", "Approve"],
  ["rejected", "Reject"],
  ["timeout", "No answer (it times out)"],
];
const MINUTE = 60000;
let eventKeys = 0;

function newEvent(type) {
  eventKeys += 1;
  return { key: eventKeys, type, mode: "after", days: "0", hours: "0", minutes: "0", at: "", details: [] };
}

/* Every step of the definition, parallel branches and loop bodies included (they are all in `steps`). */
function stepsOfType(definition, type) {
  return (definition?.steps || []).filter((step) => step.type === type);
}

/* The event types to pick from: the org's stored and the built-in ones (GET /event-types/), and
   those the definition on the screen waits for or starts on, so a new type can be simulated too. */
function useEventTypes(api, definition) {
  const [known, setKnown] = useState([]);
  useEffect(() => {
    let current = true;
    listOf(`${api}event-types/`).then((found) => current && setKnown(found));
    return () => {
      current = false;
    };
  }, [api]);
  return useMemo(() => {
    const byType = new Map(known.map((t) => [t.type, t.label || t.type]));
    const named = [definition?.trigger?.event, ...stepsOfType(definition, "wait_for_event").map((s) => s.event)];
    named.filter((t) => typeof t === "string" && t).forEach((t) => byType.has(t) || byType.set(t, t.replace(/_/g, " ")));
    return [...byType.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  }, [known, definition]);
}

/* A whole, non-negative number typed in a small box: "" counts as 0, anything else is null. */
function wholeNumber(text) {
  const clean = String(text ?? "").trim();
  if (!clean) return 0;
  return /^\d{1,6}$/.test(clean) ? Number(clean) : null;
}

/* Minutes as the ISO-8601 duration the API reads ("P1DT3H"). */
function isoDuration(totalMinutes) {
  const days = Math.floor(totalMinutes / 1440);
  const hours = Math.floor((totalMinutes % 1440) / 60);
  const minutes = totalMinutes % 60;
  const time = (hours ? `${hours}H` : "") + (minutes ? `${minutes}M` : "");
  const text = `P${days ? `${days}D` : ""}${time ? `T${time}` : ""}`;
  return text === "P" ? "PT0S" : text;
}

/* A detail's value as typed: a plain number or true/false is read as one, anything else is text. */
function detailValue(text) {
  const clean = String(text).trim();
  if (clean === "true" || clean === "false") return clean === "true";
  if (/^-?(0|[1-9]\d{0,14})(\.\d+)?$/.test(clean)) return Number(clean);
  return text;
}

/* One simulated event as the API takes it, or {problems: {field: message}} to show on its fields. */
function eventBody(item, startText) {
  const problems = {};
  let after = "PT0S";
  if (!item.type) problems.type = "Pick the event type.";
  if (item.mode === "after") {
    const parts = [wholeNumber(item.days), wholeNumber(item.hours), wholeNumber(item.minutes)];
    if (parts.some((n) => n === null)) problems.after = "Give whole numbers of days, hours and minutes (0 or more).";
    else after = isoDuration(parts[0] * 1440 + parts[1] * 60 + parts[2]);
  } else if (!item.at) {
    problems.after = "Pick the date and time of the event.";
  } else {
    const start = startText ? new Date(startText) : new Date();
    const minutes = Math.round((new Date(item.at).getTime() - start.getTime()) / MINUTE);
    if (Number.isNaN(minutes)) problems.after = "Pick the date and time of the event.";
    else if (minutes < 0) problems.after = "This is before the simulated start: pick a later time.";
    else after = isoDuration(minutes);
  }
  const properties = {};
  item.details.forEach((d) => {
    const name = d.name.trim();
    if (!name && !String(d.value).trim()) return;
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(name)) problems.properties = "A detail's name is letters, digits, _ or - (e.g. url).";
    else properties[name] = detailValue(d.value);
  });
  if (Object.keys(problems).length) return { problems };
  return { body: { type: item.type, after, properties } };
}

/* The API's errors about the events, as {index: {field: [messages]}} and a list for the whole list.
   DRF's answer is a list of per-item objects; the dry run's says "events[1].after: …". */
function eventErrors(raw) {
  const byIndex = {};
  const general = [];
  const add = (index, field, message) => {
    const name = field === "after" ? "after" : field === "properties" ? "properties" : "type";
    byIndex[index] = byIndex[index] || {};
    byIndex[index][name] = [...(byIndex[index][name] || []), String(message)];
  };
  const list = Array.isArray(raw) ? raw : raw ? [raw] : [];
  list.forEach((item, index) => {
    if (typeof item === "string") {
      const match = /^events\[(\d+)\]\.?(\w*)[^:]*:\s*(.*)$/.exec(item);
      if (match) add(Number(match[1]), match[2], match[3]);
      else general.push(item);
    } else if (item && typeof item === "object" && Array.isArray(raw)) {
      Object.entries(item).forEach(([field, messages]) =>
        (Array.isArray(messages) ? messages : [messages]).forEach((m) => add(index, field, typeof m === "string" ? m : JSON.stringify(m))),
      );
    } else if (item && typeof item === "object") {
      Object.values(item).flat().forEach((m) => general.push(String(m)));
    }
  });
  return { byIndex, general };
}

function Problems({ list }) {
  if (!list || !list.length) return null;
  return (
    <ul className="errorlist">
      {list.map((text, i) => (
        <li key={i}>{String(text)}</li>
      ))}
    </ul>
  );
}

function EventRow({ item, index, types, problems, onChange, onRemove }) {
  const id = `dry-event-${item.key}`;
  const set = (patch) => onChange({ ...item, ...patch });
  const setDetail = (at, patch) => set({ details: item.details.map((d, i) => (i === at ? { ...d, ...patch } : d)) });
  return (
    <div className="canvas-dry-event" data-event={index} role="group" aria-label={`Event ${index + 1}`}>
      <div className="canvas-dry-event-title">Event {index + 1}</div>
      <div className="canvas-field">
        <label htmlFor={`${id}-type`}>Event type</label>
        <select id={`${id}-type`} value={item.type} onChange={(e) => set({ type: e.target.value })}>
          <option value="">— choose —</option>
          {types.map(([type, label]) => (
            <option key={type} value={type}>
              {label}
            </option>
          ))}
        </select>
        <Problems list={problems.type} />
      </div>
      <div className="canvas-field">
        <label htmlFor={`${id}-mode`}>When</label>
        <select id={`${id}-mode`} value={item.mode} onChange={(e) => set({ mode: e.target.value })}>
          <option value="after">After the start, by</option>
          <option value="at">At a date and time</option>
        </select>
        {item.mode === "after" ? (
          <div className="canvas-dry-after">
            {[
              ["days", "days"],
              ["hours", "hours"],
              ["minutes", "minutes"],
            ].map(([name, unit]) => (
              <label key={name}>
                <input
                  type="number"
                  min="0"
                  step="1"
                  inputMode="numeric"
                  aria-label={`Event ${index + 1}: ${unit} after the start`}
                  value={item[name]}
                  onChange={(e) => set({ [name]: e.target.value })}
                />{" "}
                {unit}
              </label>
            ))}
          </div>
        ) : (
          <input
            type="datetime-local"
            aria-label={`Event ${index + 1}: date and time`}
            value={item.at}
            onChange={(e) => set({ at: e.target.value })}
          />
        )}
        <Problems list={problems.after} />
      </div>
      {item.details.length > 0 && (
        <div className="canvas-field">
          <span className="canvas-dry-label">Details</span>
          {item.details.map((detail, at) => (
            <div className="canvas-dry-detail" key={at}>
              <input
                type="text"
                placeholder="name, e.g. url"
                aria-label={`Event ${index + 1}: detail ${at + 1} name`}
                value={detail.name}
                onChange={(e) => setDetail(at, { name: e.target.value })}
              />
              <input
                type="text"
                placeholder="value"
                aria-label={`Event ${index + 1}: detail ${at + 1} value`}
                value={detail.value}
                onChange={(e) => setDetail(at, { value: e.target.value })}
              />
              <button
                type="button"
                className="button"
                aria-label={`Remove detail ${at + 1}`}
                onClick={() => set({ details: item.details.filter((_d, i) => i !== at) })}
              >
                ×
              </button>
            </div>
          ))}
          <Problems list={problems.properties} />
        </div>
      )}
      <p className="canvas-dry-event-actions">
        <button type="button" className="button" onClick={() => set({ details: [...item.details, { name: "", value: "" }] })}>
          Add a detail
        </button>{" "}
        <button type="button" className="button" onClick={onRemove}>
          Remove event
        </button>
      </p>
    </div>
  );
}

export default function DryRunPanel({ api, workflowId, definition, result, onResult, describe }) {
  const [contact, setContact] = useRemembered(`${workflowId}:dry:contact`, null);
  const [start, setStart] = useRemembered(`${workflowId}:dry:start`, localNow);
  const [events, setEvents] = useRemembered(`${workflowId}:dry:events`, []);
  const [decisions, setDecisions] = useRemembered(`${workflowId}:dry:approvals`, {});
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState({});
  const [eventProblems, setEventProblems] = useState({});
  const types = useEventTypes(api, definition);
  const approvalSteps = stepsOfType(definition, "approval");

  const run = async () => {
    const found = {};
    const bodies = events.map((item, index) => {
      const made = eventBody(item, start);
      if (made.problems) found[index] = Object.fromEntries(Object.entries(made.problems).map(([k, v]) => [k, [v]]));
      return made.body;
    });
    setEventProblems(found);
    if (!contact) {
      setErrors({ contact_id: ["Pick a contact first."] });
      return;
    }
    if (Object.keys(found).length) {
      setErrors({});
      return;
    }
    setBusy(true);
    const body = { contact_id: contact.id, definition, events: bodies };
    if (start) body.start = new Date(start).toISOString();
    if (approvalSteps.length) {
      body.approvals = Object.fromEntries(approvalSteps.map((s) => [s.id, decisions[s.id] || "approved"]));
    }
    const answer = await request(`${api}workflows/${workflowId}/dry-run/`, { method: "POST", body });
    setBusy(false);
    if (answer.ok) {
      setErrors({});
      onResult(answer.data);
    } else {
      const data = answer.data && typeof answer.data === "object" ? answer.data : { detail: [`HTTP ${answer.status}`] };
      setErrors(data);
      setEventProblems(eventErrors(data.events).byIndex);
      onResult(null);
    }
  };

  const asList = (value) => (value === undefined ? [] : Array.isArray(value) ? value.map((v) => (typeof v === "string" ? v : JSON.stringify(v))) : [typeof value === "string" ? value : JSON.stringify(value)]);
  const fieldErrors = (name) => <Problems list={asList(errors[name])} />;
  const shown = ["contact_id", "start", "events", "approvals"];
  const other = Object.keys(errors).filter((key) => !shown.includes(key));

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
      <section className="canvas-dry-events" aria-label="Simulated events">
        <h4>What the contact does</h4>
        {!events.length && (
          <p className="help">
            No events: every “Wait for an event” step times out. Add the events the contact makes, e.g. opening an email a
            day later.
          </p>
        )}
        {events.map((item, index) => (
          <EventRow
            key={item.key}
            item={item}
            index={index}
            types={types}
            problems={eventProblems[index] || {}}
            onChange={(next) => setEvents(events.map((e) => (e.key === item.key ? next : e)))}
            onRemove={() => {
              setEvents(events.filter((e) => e.key !== item.key));
              setEventProblems({});
            }}
          />
        ))}
        <Problems list={eventErrors(errors.events).general} />
        <p>
          <button
            type="button"
            className="button"
            onClick={() => setEvents([...events, newEvent(stepsOfType(definition, "wait_for_event")[0]?.event || "")])}
          >
            Add an event
          </button>
        </p>
      </section>
      {approvalSteps.length > 0 && (
        <section className="canvas-dry-approvals" aria-label="Approval answers">
          <h4>Approvals</h4>
          {approvalSteps.map((step) => (
            <div className="canvas-field" key={step.id}>
              <label htmlFor={`dry-approval-${step.id}`}>{step.name || step.id}</label>
              <select
                id={`dry-approval-${step.id}`}
                data-approval={step.id}
                value={decisions[step.id] || "approved"}
                onChange={(e) => setDecisions({ ...decisions, [step.id]: e.target.value })}
              >
                {APPROVAL_CHOICES.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
            </div>
          ))}
          {fieldErrors("approvals")}
        </section>
      )}
      {other.map((key) => (
        <ul className="errorlist" key={key}>
          <li>{asList(errors[key]).join(" ")}</li>
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
  const names = new Map((result.path || []).filter((item) => item.step).map((item) => [item.step, item.name || item.step]));
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
      {(result.events || []).length > 0 && (
        <ul className="canvas-dry-events-seen" aria-label="Simulated events">
          {result.events.map((event, index) => (
            <li key={index}>
              {event.type.replace(/_/g, " ")} <span className="help">{when(event.at)}</span>:{" "}
              {event.woke?.length
                ? `answered ${event.woke.map((id) => `“${names.get(id) || id}”`).join(", ")}`
                : "no step was waiting for it"}
            </li>
          ))}
        </ul>
      )}
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
