/* The workflow page: mounts the canvas on the element carrying `data-workflow-canvas`. */
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import Canvas from "../canvas/Canvas.jsx";

function start() {
  const node = document.querySelector("[data-workflow-canvas]");
  if (!node) return;
  const extra = document.getElementById("workflow-canvas-config");
  const boot = document.getElementById("workflow-canvas-boot");
  const config = {
    workflowId: node.dataset.workflowId,
    api: node.dataset.api || "/api/v1/",
    rules: { fields: [], tags: [], lists: [], ...(extra ? JSON.parse(extra.textContent) : {}) },
    // The workflow and the catalog as the page rendered them, so the first drawing waits on no request.
    boot: boot ? JSON.parse(boot.textContent) : null,
  };
  createRoot(node).render(
    <StrictMode>
      <Canvas config={config} />
    </StrictMode>,
  );
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
