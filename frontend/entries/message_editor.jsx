/*
 * The message template page (add and change): the variant editor above the form's `variants`
 * box, which moves under an "Advanced" disclosure and stays the form's field (what the page
 * saves). Without JavaScript the page is the plain form, the box edited as JSON.
 */
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import VariantEditor from "../messages/VariantEditor.jsx";
import "../messages/message_editor.css";

function start() {
  const textarea = document.getElementById("id_variants");
  const configNode = document.getElementById("message-editor-config");
  if (!textarea || !configNode || textarea.readOnly || textarea.disabled) return; // read-only page
  const config = JSON.parse(configNode.textContent);
  const fieldRow = textarea.closest(".form-row") || textarea.parentElement;

  const mount = document.createElement("div");
  mount.className = "message-editor-root";
  fieldRow.before(mount);
  const advanced = document.createElement("details");
  advanced.className = "message-editor-advanced";
  const summary = document.createElement("summary");
  summary.textContent = "Advanced: the variants as JSON";
  advanced.append(summary);
  fieldRow.before(advanced);
  advanced.append(fieldRow);
  const note = document.createElement("p");
  note.className = "help";
  note.textContent =
    "What the cards above write, and what the page saves. A change here shows in the cards once it is valid JSON.";
  fieldRow.before(note);
  textarea.rows = 16;

  createRoot(mount).render(
    <StrictMode>
      <VariantEditor
        config={config}
        textarea={textarea}
        channelSelect={document.getElementById("id_channel")}
        purposeSelect={document.getElementById("id_purpose")}
      />
    </StrictMode>,
  );
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
