/*
 * The message template page's variant editor: one card per variant (name, weight, the fields
 * its channel has, HTML and text in a code editor) with the server's rendering of it beside it,
 * for a contact picked above. It edits the list the form's JSON box holds and writes every change
 * back into the box, which is what the page saves; a box edited by hand is read back.
 *
 * Everything from the server is rendered by React as text, never as HTML; the rendered HTML body
 * goes into a sandboxed frame (`sandbox=""`: no scripts, no same-origin access) as its srcdoc.
 */
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { postJson, getJson } from "./api.js";
import CodeEditor from "./CodeEditor.jsx";
import {
  CODE_FIELDS,
  helpOf,
  labelOf,
  localProblems,
  newKey,
  nextName,
  parseVariants,
  problemsByField,
  shares,
  variantsText,
  weightOf,
} from "./variants.js";

const DEBOUNCE_MS = 400;

function Errors({ messages, id }) {
  if (!messages || !messages.length) return null;
  return (
    <ul className="errorlist" id={id}>
      {messages.map((m, i) => (
        <li key={i}>{m}</li>
      ))}
    </ul>
  );
}

/* The live preview of one variant: asked of POST message-templates/preview/ once the variant has
   stopped changing for DEBOUNCE_MS; a change aborts the request in flight and an older answer
   arriving late is dropped, so what shows is always the newest variant's (or "Updating…"). */
function usePreview(api, channel, purpose, variant, contactId) {
  const [answer, setAnswer] = useState({ state: "updating" });
  const asked = useRef(0);
  const body = useMemo(
    () => JSON.stringify({ channel, purpose, variant, contact: contactId || null }),
    [channel, purpose, variant, contactId],
  );
  useEffect(() => {
    const mine = ++asked.current;
    const controller = new AbortController();
    setAnswer((previous) => ({ ...previous, state: "updating" }));
    const timer = setTimeout(async () => {
      const result = await postJson(`${api}message-templates/preview/`, body, controller.signal);
      if (result.aborted || mine !== asked.current) return;
      if (result.ok) setAnswer({ state: "done", content: result.data.content, contact: result.data.contact });
      else if (result.status === 400 && result.data && Array.isArray(result.data.problems)) {
        setAnswer({ state: "problems", problems: result.data.problems });
      } else {
        const detail = result.data && (result.data.detail || Object.values(result.data).flat().join(" "));
        setAnswer({ state: "failed", message: detail || `The preview failed (HTTP ${result.status}).` });
      }
    }, DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [api, body]);
  return answer;
}

function Preview({ channel, answer }) {
  const heading = (
    <p className="message-preview-for help" aria-live="polite">
      {answer.state === "updating"
        ? "Updating the preview…"
        : answer.contact
          ? `As ${answer.contact.name || answer.contact.email || "the contact"}${
              answer.contact.email && answer.contact.name ? ` <${answer.contact.email}>` : ""
            } would get it${answer.contact.sample ? " (a sample contact: this organisation has none yet)" : ""}.`
          : ""}
    </p>
  );
  if (answer.state === "problems") {
    return (
      <div className="message-preview problems">
        {heading}
        <p className="message-preview-problem">This variant cannot be shown yet: see the field marked in red.</p>
      </div>
    );
  }
  if (answer.state === "failed") {
    return (
      <div className="message-preview problems">
        {heading}
        <p className="message-preview-problem">{answer.message}</p>
      </div>
    );
  }
  const content = answer.content || {};
  const line = (label, value, className) =>
    value ? (
      <p className={`message-preview-line ${className || ""}`}>
        <strong>{label}:</strong> {typeof value === "string" ? value : JSON.stringify(value)}
      </p>
    ) : null;
  return (
    <div className={`message-preview${answer.state === "updating" ? " updating" : ""}`}>
      {heading}
      {channel === "email" && (
        <>
          {line("Subject", content.subject, "message-preview-subject")}
          {line("Preheader", content.preheader, "message-preview-preheader")}
          {content.html ? (
            <iframe className="message-preview-html" title="The HTML body as sent" sandbox="" srcDoc={content.html} />
          ) : null}
          {content.text ? (
            <details className="message-preview-text-box">
              <summary>Text version</summary>
              <pre className="message-preview-text">{content.text}</pre>
            </details>
          ) : null}
        </>
      )}
      {channel === "push" && (
        <>
          {line("Title", content.title, "message-preview-subject")}
          {content.body ? <pre className="message-preview-text">{content.body}</pre> : null}
          {line("Link", content.url)}
        </>
      )}
      {!["email", "push"].includes(channel) && (
        <>
          {content.text ? <pre className="message-preview-text">{content.text}</pre> : null}
          {channel === "sms" && content.text ? (
            <p className="help">
              {content.text.length} characters
              {content.text.length > 160 ? `: sent as ${Math.ceil(content.text.length / 153)} SMS segments` : ""}.
            </p>
          ) : null}
          {content.payload ? <pre className="message-preview-text">{JSON.stringify(content.payload, null, 2)}</pre> : null}
        </>
      )}
    </div>
  );
}

function Field({ uid, channel, field, value, onChange, messages, errorLine }) {
  const id = `${uid}-${field}`;
  const label = labelOf(channel, field);
  const help = helpOf(channel, field);
  const errorsId = messages && messages.length ? `${id}-errors` : undefined;
  let input;
  if (field === "payload") {
    input = (
      <p className="help" id={id}>
        {value === undefined || value === ""
          ? "No payload. A payload (the message's JSON) is written under Advanced below."
          : "This variant has a payload; edit it under Advanced below."}
      </p>
    );
  } else if (CODE_FIELDS.has(field)) {
    input = (
      <CodeEditor
        value={typeof value === "string" ? value : ""}
        onChange={onChange}
        labelId={`${id}-label`}
        describedBy={errorsId}
        errorLine={errorLine}
        isHtml={field === "html"}
      />
    );
  } else {
    input = (
      <input
        type="text"
        id={id}
        className="vTextField"
        value={typeof value === "string" ? value : ""}
        aria-describedby={errorsId}
        aria-invalid={errorsId ? "true" : undefined}
        onChange={(event) => onChange(event.target.value)}
      />
    );
  }
  return (
    <div className={`message-field message-field-${field}${errorsId ? " has-problem" : ""}`}>
      <label id={`${id}-label`} htmlFor={CODE_FIELDS.has(field) ? undefined : id}>
        {label}
      </label>
      {input}
      <Errors messages={messages} id={errorsId} />
      {help ? <p className="help">{help}</p> : null}
    </div>
  );
}

function VariantCard({ api, channel, purpose, fields, variant, share, local, server, contactId, canRemove, onChange, onRemove }) {
  const uid = `variant${useId().replace(/:/g, "")}`;
  const data = variant.data;
  const previewed = useMemo(() => {
    const copy = { ...data };
    delete copy.weight; // the weight changes no rendering
    return copy;
  }, [data]);
  const answer = usePreview(api, channel, purpose, previewed, contactId);
  const previewProblems = answer.state === "problems" ? problemsByField(answer.problems) : {};
  const lineOf = (field) => {
    const found = (answer.state === "problems" ? answer.problems : []).find((p) => p.field === field && p.line);
    return found ? found.line : null;
  };
  const messagesOf = (field) => [
    ...(local[field] ? [local[field]] : []),
    ...(server[field] || []),
    ...(previewProblems[field] || []),
  ];
  const set = (field, value) => {
    const next = { ...data };
    if (value === "" && field !== "name" && field !== "weight") delete next[field];
    else next[field] = value;
    onChange(next, field);
  };
  const extra = Object.keys(data).filter((f) => f !== "name" && f !== "weight" && !fields.includes(f));
  const general = [
    ...(server[""] || []),
    ...(previewProblems[""] || []),
    ...extra.map((f) => `“${f}” is not a field of this channel; remove it under Advanced (or change the channel).`),
  ];
  return (
    <section className="message-variant" aria-label={`Variant ${data.name || ""}`} data-variant={data.name || ""}>
      <div className="message-variant-head">
        <div className={`message-field message-field-name${messagesOf("name").length ? " has-problem" : ""}`}>
          <label htmlFor={`${uid}-name`}>Variant name</label>
          <input
            id={`${uid}-name`}
            type="text"
            className="vTextField"
            maxLength={50}
            value={typeof data.name === "string" ? data.name : ""}
            onChange={(event) => set("name", event.target.value)}
          />
          <Errors messages={messagesOf("name")} />
        </div>
        <div className={`message-field message-field-weight${messagesOf("weight").length ? " has-problem" : ""}`}>
          <label htmlFor={`${uid}-weight`}>Weight</label>
          <input
            id={`${uid}-weight`}
            type="text"
            inputMode="decimal"
            className="vIntegerField"
            value={data.weight === undefined ? "" : String(data.weight)}
            aria-describedby={`${uid}-share`}
            onChange={(event) => set("weight", weightOf(event.target.value))}
          />
          <span className="help" id={`${uid}-share`}>
            {share === null ? "" : `${Math.round(share * 10) / 10}% of sends`}
          </span>
          <Errors messages={messagesOf("weight")} />
        </div>
        {canRemove ? (
          <button type="button" className="button message-variant-remove" onClick={onRemove}>
            Remove variant {data.name || ""}
          </button>
        ) : null}
      </div>
      <Errors messages={general} />
      <div className="message-variant-body">
        <div className="message-variant-fields">
          {fields.map((field) => (
            <Field
              key={field}
              uid={uid}
              channel={channel}
              field={field}
              value={data[field]}
              onChange={(value) => set(field, value)}
              messages={messagesOf(field)}
              errorLine={lineOf(field)}
            />
          ))}
        </div>
        <div className="message-variant-preview">
          <h3>Preview</h3>
          <Preview channel={channel} answer={answer} />
        </div>
      </div>
    </section>
  );
}

function ContactPicker({ api, contactId, onPick }) {
  const [search, setSearch] = useState("");
  const [found, setFound] = useState([]);
  useEffect(() => {
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      const query = search.trim() ? `&search=${encodeURIComponent(search.trim())}` : "";
      const result = await getJson(`${api}contacts/?page_size=20${query}`, controller.signal);
      if (!result.aborted && result.ok) setFound(result.data.results || []);
    }, search ? DEBOUNCE_MS : 0);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [api, search]);
  const label = (c) => `${[c.first_name, c.last_name].filter(Boolean).join(" ") || "(no name)"} — ${c.email || "no email"}`;
  return (
    <div className="message-editor-contact">
      <label htmlFor="message-preview-search">Preview for</label>
      <input
        id="message-preview-search"
        type="search"
        className="vTextField"
        placeholder="Find a contact by name or email"
        value={search}
        onChange={(event) => setSearch(event.target.value)}
      />
      <select
        aria-label="Contact to preview for"
        value={contactId ? String(contactId) : ""}
        onChange={(event) => onPick(event.target.value ? Number(event.target.value) : null)}
      >
        <option value="">The first contact (or a sample one)</option>
        {found.map((c) => (
          <option key={c.id} value={String(c.id)}>
            {label(c)}
          </option>
        ))}
      </select>
    </div>
  );
}

function withKeys(list) {
  return list.map((data) => ({ key: newKey(), data }));
}

/* Problems the page was served with, by variant key and field; dropped from a field once it is edited. */
function serverProblems(problems, variants) {
  const byKey = {};
  const unplaced = [];
  problems.forEach((p) => {
    let index = p.index;
    if (index === null || index === undefined || !variants[index]) {
      index = variants.findIndex((v) => v.data.name === p.variant);
    }
    if (index < 0 || !variants[index]) {
      unplaced.push(p.message);
      return;
    }
    const key = variants[index].key;
    const byField = (byKey[key] = byKey[key] || {});
    (byField[p.field || ""] = byField[p.field || ""] || []).push(p.message + (p.path ? ` (${p.path})` : ""));
  });
  return { byKey, unplaced };
}

export default function VariantEditor({ config, textarea, channelSelect, purposeSelect }) {
  const [variants, setVariants] = useState(() => {
    const parsed = parseVariants(textarea.value);
    if (parsed.list && parsed.list.length === 0) {
      // A new template: one card to fill in rather than an empty page.
      const first = [{ name: "A", weight: 100 }];
      textarea.value = variantsText(first);
      return withKeys(first);
    }
    return withKeys(parsed.list || []);
  });
  const [jsonNote, setJsonNote] = useState(() => parseVariants(textarea.value).error || "");
  const [channel, setChannel] = useState(channelSelect ? channelSelect.value : "email");
  const [purpose, setPurpose] = useState(purposeSelect ? purposeSelect.value : "marketing");
  const [contactId, setContactId] = useState(null);
  const [server, setServer] = useState(() => serverProblems(config.problems || [], variants));
  const written = useRef(textarea.value);

  useEffect(() => {
    const onInput = () => {
      if (textarea.value === written.current) return;
      written.current = textarea.value;
      const parsed = parseVariants(textarea.value);
      setJsonNote(parsed.error || "");
      if (parsed.list) {
        setVariants((current) =>
          parsed.list.map((data, i) => ({ key: current[i] ? current[i].key : newKey(), data })),
        );
      }
    };
    textarea.addEventListener("input", onInput);
    const onChannel = () => setChannel(channelSelect.value);
    const onPurpose = () => setPurpose(purposeSelect.value);
    if (channelSelect) channelSelect.addEventListener("change", onChannel);
    if (purposeSelect) purposeSelect.addEventListener("change", onPurpose);
    return () => {
      textarea.removeEventListener("input", onInput);
      if (channelSelect) channelSelect.removeEventListener("change", onChannel);
      if (purposeSelect) purposeSelect.removeEventListener("change", onPurpose);
    };
  }, [textarea, channelSelect, purposeSelect]);

  function commit(next) {
    setVariants(next);
    const text = variantsText(next.map((v) => v.data));
    written.current = text;
    textarea.value = text;
    setJsonNote("");
  }

  const fields = config.fields[channel] || [];
  const local = localProblems(variants.map((v) => v.data));
  const split = shares(variants.map((v) => v.data));

  function add() {
    const last = variants[variants.length - 1];
    const data = { ...(last ? last.data : {}), name: nextName(variants.map((v) => v.data)) };
    if (!last) data.weight = 100;
    commit([...variants, { key: newKey(), data }]);
  }

  return (
    <div className="message-editor">
      <ContactPicker api={config.api} contactId={contactId} onPick={setContactId} />
      <Errors messages={server.unplaced} />
      {jsonNote ? <p className="message-editor-note errornote">{jsonNote}</p> : null}
      {variants.map((variant, index) => (
        <VariantCard
          key={variant.key}
          api={config.api}
          channel={channel}
          purpose={purpose}
          fields={fields}
          variant={variant}
          share={split[index]}
          local={local[index]}
          server={server.byKey[variant.key] || {}}
          contactId={contactId}
          canRemove={variants.length > 1}
          onChange={(data, field) => {
            const problems = server.byKey[variant.key];
            if (problems && problems[field]) {
              const rest = { ...problems };
              delete rest[field];
              setServer({ ...server, byKey: { ...server.byKey, [variant.key]: rest } });
            }
            commit(variants.map((v) => (v.key === variant.key ? { ...v, data } : v)));
          }}
          onRemove={() => commit(variants.filter((v) => v.key !== variant.key))}
        />
      ))}
      {variants.length === 0 ? <p className="help">No variant yet: add one to write the message.</p> : null}
      <p className="message-editor-actions">
        <button type="button" className="button message-variant-add" onClick={add}>
          Add variant
        </button>
        <span className="help">
          {" "}
          A new variant starts as a copy of the last one. Each contact gets one variant, chosen by weight (a variant
          with weight 50 of 100 in all goes to half of the sends), and always the same one.
        </span>
      </p>
    </div>
  );
}
