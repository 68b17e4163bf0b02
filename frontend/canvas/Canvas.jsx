/*
 * The workflow canvas: a node per step with its name and type, an edge per exit with its label,
 * a palette to drag steps from, the selected step's form, save draft / check / publish with the
 * server's errors on the steps and fields they name, a dry run whose path is highlighted, the live
 * per-step counts as badges, and the definition as JSON ("Advanced").
 */
import {
  Background,
  Controls,
  Handle,
  MiniMap,
  Position,
  ReactFlow,
  ReactFlowProvider,
  applyNodeChanges,
  useReactFlow,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useCallback, useEffect, useMemo, useState } from "react";
import { problemsOf, request } from "./api.js";
import { catalogFrom, catalogLoad, exitSet, exitsOf, stepItem, stepKind, stepTitle } from "./catalog.js";
import { CanvasContext } from "./fields.jsx";
import { NODE_HEIGHT, NODE_WIDTH, layoutPositions, needsLayout } from "./layout.js";
import DryRunPanel from "./DryRun.jsx";
import ChangesPanel, { changeMarks } from "./Changes.jsx";
import { publishPageOpen } from "./publishing.js";
import ProjectionPanel, { ProjectedBadge } from "./Projection.jsx";
import LabelledEdge from "./LabelledEdge.jsx";
import StepForm from "./StepForm.jsx";
import TriggerForm from "./TriggerForm.jsx";
import "./canvas.css";

const TRIGGER = "__trigger";
const DRAG_TYPE = "application/x-workflow-step";
const COUNTS = ["waiting", "running", "done", "failed"];
const RECENT_MS = 4000;

/* The counts the page rendered in its live-status table, until the websocket brings newer. */
function countsOnPage() {
  const counts = {};
  document.querySelectorAll("#workflow-step-counts tr[data-step]").forEach((row) => {
    counts[row.dataset.step] = Object.fromEntries(
      COUNTS.map((name) => [name, Number(row.querySelector(`[data-count="${name}"]`)?.textContent || 0)]),
    );
  });
  return counts;
}

function CountBadges({ counts }) {
  const shown = COUNTS.filter((name) => counts && counts[name] > 0);
  if (!shown.length) return null;
  return (
    <div className="canvas-node-counts" aria-label="Runs in this step">
      {shown.map((name) => (
        <span key={name} className={`canvas-count ${name}`} data-count={name} title={name}>
          {counts[name]} {name}
        </span>
      ))}
    </div>
  );
}

function StepNode({ data, selected }) {
  const { exits, title, kind, problems, trigger, counts, dry, projected, change } = data;
  return (
    <div
      className={
        "canvas-node" +
        (selected ? " selected" : "") +
        (problems ? " has-errors" : "") +
        (trigger ? " trigger" : "") +
        (dry ? " dry-taken" : "") +
        (dry === false ? " dry-skipped" : "") +
        (change ? ` diff-${change}` : "")
      }
      style={{ width: NODE_WIDTH, minHeight: NODE_HEIGHT - 20 }}
    >
      {!trigger && <Handle type="target" position={Position.Top} />}
      <div className="canvas-node-title">{title}</div>
      <div className="canvas-node-kind">{kind}</div>
      {change && <div className={`canvas-node-diff ${change}`}>{change === "added" ? "Added" : "Changed"}</div>}
      {dry && dry.decision && (
        <div className="canvas-node-decision" title="What the dry run decided here">
          {dry.decision}
        </div>
      )}
      <CountBadges counts={counts} />
      {projected !== undefined && <ProjectedBadge value={projected} trigger={trigger} />}
      {problems > 0 && (
        <div className="canvas-node-errors" role="status">
          {problems} problem{problems === 1 ? "" : "s"}
        </div>
      )}
      {exits.map((exit, index) => (
        <Handle
          key={exit.handle}
          id={exit.handle}
          type="source"
          position={Position.Bottom}
          title={exit.label}
          style={{ left: `${((index + 1) / (exits.length + 1)) * 100}%` }}
        />
      ))}
      {exits.length > 1 && (
        <div className="canvas-node-exits" aria-hidden="true">
          {exits.map((exit) => (
            <span key={exit.handle}>{exit.label}</span>
          ))}
        </div>
      )}
    </div>
  );
}
const NODE_TYPES = { step: StepNode };
const EDGE_TYPES = { labelled: LabelledEdge };
// A node's size before React Flow has measured it: with it, every node is drawn on the first
// render (React Flow hides nodes it cannot size), and the measured size replaces it right after.
const SIZE_GUESS = { initialWidth: NODE_WIDTH, initialHeight: NODE_HEIGHT - 20 };

function uniqueId(steps, base) {
  const taken = new Set(steps.map((s) => s.id));
  const clean = String(base).replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 80) || "step";
  if (!taken.has(clean)) return clean;
  for (let n = 2; ; n += 1) if (!taken.has(`${clean}_${n}`)) return `${clean}_${n}`;
}

/* A new step of a palette entry, with its exits open. */
function newStep(catalog, entry, steps, position) {
  const step = { id: uniqueId(steps, entry.action || entry.type), type: entry.type, name: entry.label };
  if (entry.type === "action") Object.assign(step, { action: entry.action, config: {} });
  if (entry.type === "switch") step.cases = [{ name: "Case 1", when: null, next: null }];
  if (entry.type === "split")
    step.branches = [
      { name: "A", weight: 50, next: null },
      { name: "B", weight: 50, next: null },
    ];
  if (entry.type === "parallel") step.branches = [];
  const item = stepItem(catalog, entry.type);
  (item ? item.edges || [] : []).forEach((edge) => {
    if (!edge.array) step[edge.field] = null;
  });
  step.position = position;
  return step;
}

function Palette({ catalog, onAdd }) {
  const entries = [
    ...catalog.actions.map((a) => ({ type: "action", action: a.name, label: a.label, description: a.description, group: "Actions" })),
    ...catalog.steps
      .filter((s) => s.type !== "action")
      .map((s) => ({ type: s.type, label: s.label, description: s.description, group: "Flow" })),
  ];
  const groups = ["Actions", "Flow"].map((g) => [g, entries.filter((e) => e.group === g)]).filter(([, list]) => list.length);
  return (
    <aside className="canvas-palette" aria-label="Steps you can add">
      <p className="help">Drag a step onto the canvas (or click it to add).</p>
      {!catalog.fromServer && <p className="help">Actions are listed once the catalog is available.</p>}
      {groups.map(([group, list]) => (
        <div key={group}>
          <h3>{group}</h3>
          <ul>
            {list.map((entry) => (
              <li
                key={`${entry.type}:${entry.action || ""}`}
                className="canvas-palette-item"
                draggable
                title={entry.description || ""}
                data-palette={entry.action || entry.type}
                onDragStart={(e) => {
                  e.dataTransfer.setData(DRAG_TYPE, JSON.stringify(entry));
                  e.dataTransfer.effectAllowed = "move";
                }}
                onClick={() => onAdd(entry, null)}
              >
                {entry.label}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </aside>
  );
}

function Editor({ config }) {
  const { workflowId, api } = config;
  const flow = useReactFlow();
  const [catalog, setCatalog] = useState(null);
  const [workflow, setWorkflow] = useState(null);
  const [definition, setDefinition] = useState(null);
  const [nodes, setNodes] = useState([]);
  const [selected, setSelected] = useState(null);
  const [problems, setProblems] = useState([]);
  const [message, setMessage] = useState({ text: "Loading…", kind: "" });
  const [dirty, setDirty] = useState(false);
  const [busy, setBusy] = useState(false);
  const [tab, setTab] = useState("canvas");
  const [jsonText, setJsonText] = useState("");
  const [jsonError, setJsonError] = useState("");
  const [dryResult, setDryResult] = useState(null);
  const [projection, setProjection] = useState(null);
  const [liveCounts, setLiveCounts] = useState(countsOnPage);
  const [recent, setRecent] = useState([]);
  const [changes, setChanges] = useState(null);
  const marks = useMemo(() => changeMarks(changes), [changes]);

  const steps = definition ? definition.steps || [] : [];

  useEffect(() => {
    (async () => {
      const boot = config.boot;
      const [answer, found] =
        boot && boot.workflow && boot.catalog && Array.isArray(boot.catalog.steps)
          ? [{ ok: true, data: boot.workflow }, catalogFrom(boot.catalog)]
          : await Promise.all([request(`${api}workflows/${workflowId}/`), catalogLoad(api)]);
      setCatalog(found);
      if (!answer.ok) {
        setMessage({ text: `The workflow could not be loaded (${answer.data?.detail || `HTTP ${answer.status}`}).`, kind: "error" });
        return;
      }
      setWorkflow(answer.data);
      let loaded = answer.data.definition || { trigger: { type: "manual" }, steps: [] };
      loaded = { ...loaded, steps: loaded.steps || [] };
      if (needsLayout(loaded.steps) && loaded.steps.length) {
        const draftNodes = [{ id: TRIGGER }, ...loaded.steps.map((s) => ({ id: s.id }))];
        const draftEdges = edgesOf(found, loaded.steps);
        const positions = await layoutPositions(draftNodes, draftEdges);
        loaded = { ...loaded, steps: loaded.steps.map((s) => ({ ...s, position: s.position || positions[s.id] })) };
      }
      setDefinition(loaded);
      setMessage({ text: "", kind: "" });
    })();
  }, [api, workflowId]);

  const problemsByStep = useMemo(() => {
    const by = new Map();
    problems.forEach((p) => by.set(p.step, [...(by.get(p.step) || []), p]));
    return by;
  }, [problems]);

  // The page's live status (static/workflows/live_status.js) passes on what its websocket brings.
  useEffect(() => {
    const onCounts = (event) => setLiveCounts(event.detail || {});
    const onTransitions = (event) => {
      const moved = (event.detail || []).map((t) => ({ step: t.step, to: t.to, until: Date.now() + RECENT_MS }));
      setRecent((current) => [...current.filter((r) => r.until > Date.now()), ...moved]);
      setTimeout(() => setRecent((current) => current.filter((r) => r.until > Date.now())), RECENT_MS + 50);
    };
    document.addEventListener("workflow-live:counts", onCounts);
    document.addEventListener("workflow-live:transitions", onTransitions);
    return () => {
      document.removeEventListener("workflow-live:counts", onCounts);
      document.removeEventListener("workflow-live:transitions", onTransitions);
    };
  }, []);

  // The dry run's path: the steps it went through with their last decision, and the links it took.
  const dryPath = useMemo(() => {
    if (!dryResult) return null;
    const decisions = new Map();
    const links = new Set();
    (dryResult.path || []).forEach((item) => {
      if (!item.step) return;
      decisions.set(item.step, item.decision);
      if (item.next) links.add(`${item.step}>${item.next}`);
    });
    return { decisions, links, first: dryResult.path?.[0]?.step };
  }, [dryResult]);

  // A decision names the exit taken ("true_next"): say it as the canvas labels that exit ("Yes").
  const decisionText = useCallback(
    (stepId, decision) => {
      const found = steps.find((s) => s.id === stepId);
      const exit = found && catalog ? exitsOf(catalog, found).find((e) => e.handle === decision) : null;
      return exit ? exit.label : String(decision ?? "").replace(/_/g, " ");
    },
    [steps, catalog],
  );

  // Nodes follow the definition; React Flow keeps its own copy while a node is dragged.
  useEffect(() => {
    if (!definition || !catalog) return;
    const first = steps[0]?.position || { x: 0, y: 130 };
    setNodes([
      {
        id: TRIGGER,
        type: "step",
        ...SIZE_GUESS,
        position: { x: first.x, y: first.y - 130 },
        deletable: false,
        selected: selected === TRIGGER,
        data: {
          trigger: true,
          title: "Starts when",
          kind: triggerText(catalog, definition.trigger),
          exits: steps.length ? [{ handle: "start", label: "Start" }] : [],
          problems: (problemsByStep.get(null) || []).filter((p) => /trigger/.test(p.path)).length,
          dry: dryPath ? { decision: "" } : undefined,
          projected: projection ? projection.contacts : undefined,
        },
      },
      ...steps.map((step) => ({
        id: step.id,
        type: "step",
        ...SIZE_GUESS,
        position: step.position || { x: 0, y: 0 },
        selected: step.id === selected,
        data: {
          title: stepTitle(catalog, step),
          kind: stepKind(catalog, step),
          exits: exitsOf(catalog, step),
          problems: (problemsByStep.get(step.id) || []).length,
          counts: liveCounts[step.id],
          change: marks.get(step.id),
          dry: dryPath
            ? dryPath.decisions.has(step.id)
              ? { decision: decisionText(step.id, dryPath.decisions.get(step.id)) }
              : false
            : undefined,
          projected: projection ? projection.steps?.[step.id] || 0 : undefined,
        },
      })),
    ]);
  }, [definition, catalog, problemsByStep, selected, liveCounts, dryPath, projection, marks]); // eslint-disable-line react-hooks/exhaustive-deps

  const edges = useMemo(() => {
    if (!catalog || !definition) return [];
    const moved = new Set(recent.map((r) => `${r.step}>${r.to}`));
    return edgesOf(catalog, steps).map((edge) => {
      const link = `${edge.source}>${edge.target}`;
      const taken = dryPath && (dryPath.links.has(link) || (edge.source === TRIGGER && edge.target === dryPath.first));
      const extra = [taken ? "dry-taken" : "", moved.has(link) ? "live-recent" : ""].filter(Boolean).join(" ");
      return extra ? { ...edge, className: `${edge.className || ""} ${extra}`.trim(), animated: Boolean(taken) } : edge;
    });
  }, [catalog, definition, dryPath, recent]); // eslint-disable-line react-hooks/exhaustive-deps

  const change = useCallback((next) => {
    setDefinition(next);
    setDirty(true);
  }, []);

  // The page's own form holds the definition too: keep it the canvas's, so its "Save" button
  // never writes back what the page loaded with.
  useEffect(() => {
    const box = document.querySelector("textarea[name=draft_definition]");
    if (box && definition && dirty) box.value = JSON.stringify(definition, null, 2);
  }, [definition, dirty]);

  const replaceStep = (id, next) => change({ ...definition, steps: steps.map((s) => (s.id === id ? next : s)) });

  const removeSteps = (ids) => {
    const gone = new Set(ids);
    const kept = steps
      .filter((s) => !gone.has(s.id))
      .map((s) => exitsOf(catalog, s).reduce((acc, exit) => (gone.has(exit.target) ? exitSet(acc, exit.handle, null) : acc), s));
    if (gone.has(selected)) setSelected(null);
    change({ ...definition, steps: kept });
  };

  const addStep = (entry, position) => {
    const at = position || { x: (steps.at(-1)?.position?.x ?? 0) + 40, y: (steps.at(-1)?.position?.y ?? 0) + 140 };
    const step = newStep(catalog, entry, steps, { x: Math.round(at.x), y: Math.round(at.y) });
    change({ ...definition, steps: [...steps, step] });
    setSelected(step.id);
  };

  const onDrop = (event) => {
    event.preventDefault();
    const raw = event.dataTransfer.getData(DRAG_TYPE);
    if (!raw) return;
    const position = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    addStep(JSON.parse(raw), { x: position.x - NODE_WIDTH / 2, y: position.y - 20 });
  };

  const onConnect = ({ source, sourceHandle, target }) => {
    if (source === TRIGGER) {
      // The run starts at the first step: the trigger's link moves the target to the front.
      const first = steps.find((s) => s.id === target);
      if (first) change({ ...definition, steps: [first, ...steps.filter((s) => s.id !== target)] });
      return;
    }
    const step = steps.find((s) => s.id === source);
    if (step) replaceStep(source, exitSet(step, sourceHandle, target));
  };

  const onEdgesDelete = (gone) => {
    let next = steps;
    gone.forEach((edge) => {
      if (edge.source === TRIGGER) return;
      next = next.map((s) => (s.id === edge.source ? exitSet(s, edge.sourceHandle, null) : s));
    });
    change({ ...definition, steps: next });
  };

  const onNodeDragStop = (_event, _node, moved) => {
    const at = new Map(moved.filter((n) => n.id !== TRIGGER).map((n) => [n.id, n.position]));
    if (!at.size) return;
    change({
      ...definition,
      steps: steps.map((s) =>
        at.has(s.id) ? { ...s, position: { x: Math.round(at.get(s.id).x), y: Math.round(at.get(s.id).y) } } : s,
      ),
    });
  };

  const answered = (answer, done) => {
    if (answer.ok) {
      setProblems([]);
      setMessage({ text: done, kind: "success" });
      return true;
    }
    const found = problemsOf(answer.data);
    setProblems(found);
    const onSteps = found.filter((p) => p.step).length;
    const summary = onSteps ? ` The marked steps show where (${found.length} in all).` : "";
    const first = found.length ? found[0].message : `HTTP ${answer.status}`;
    setMessage({ text: `${found.length > 1 ? "Problems" : "A problem"}: ${first}${summary}`, kind: "error" });
    return false;
  };

  const save = async () => {
    setBusy(true);
    const answer = await request(`${api}workflows/${workflowId}/`, { method: "PATCH", body: { definition } });
    setBusy(false);
    if (answered(answer, "Draft saved.")) {
      setDirty(false);
      setWorkflow(answer.data);
    }
    return answer.ok;
  };

  const check = async () => {
    setBusy(true);
    const answer = await request(`${api}workflows/validate/`, { method: "POST", body: { definition } });
    setBusy(false);
    answered(answer, "No problems: this draft can be published.");
  };

  const publish = async () => {
    if (dirty && !(await save())) return;
    setBusy(true);
    // Runs still going: the console's publish page asks whether they keep their version or move.
    const fresh = await request(`${api}workflows/${workflowId}/`);
    const running = fresh.ok ? fresh.data.running_runs || 0 : 0;
    if (running > 0) {
      const runs = running === 1 ? "1 run is" : `${running} runs are`;
      setMessage({ text: `${runs} still going: opening the publish page, which asks what happens to them.`, kind: "" });
      publishPageOpen(workflowId);
      return;
    }
    const answer = await request(`${api}workflows/${workflowId}/publish/`, { method: "POST", body: {} });
    setBusy(false);
    if (answered(answer, "Published.")) {
      setWorkflow(answer.data);
      const number = answer.data?.live_version?.number;
      const text = number ? `Published as version ${number}; new runs start on it (no runs were going).` : "Published.";
      setMessage({ text: `${text} Reload the page to see its runs.`, kind: "success" });
    }
  };

  const openJson = () => {
    setJsonText(JSON.stringify(definition, null, 2));
    setJsonError("");
    setTab("json");
  };

  const applyJson = () => {
    let parsed;
    try {
      parsed = JSON.parse(jsonText);
    } catch (error) {
      setJsonError(`Not valid JSON: ${error.message}`);
      return false;
    }
    if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.steps)) {
      setJsonError("The definition needs a “steps” list.");
      return false;
    }
    setJsonError("");
    change(parsed);
    return true;
  };

  if (!catalog || !definition) {
    return <p className={"canvas-message " + message.kind}>{message.text}</p>;
  }
  const step = steps.find((s) => s.id === selected);
  const stray = problems.filter((p) => !p.step || !steps.some((s) => s.id === p.step));

  return (
    <div className="canvas-editor">
      <div className="canvas-toolbar">
        <div role="tablist" className="canvas-tabs">
          <button type="button" role="tab" aria-selected={tab === "canvas"} onClick={() => (tab === "json" ? applyJson() && setTab("canvas") : setTab("canvas"))}>
            Canvas
          </button>
          <button type="button" role="tab" aria-selected={tab === "json"} onClick={() => tab !== "json" && openJson()}>
            Advanced (JSON)
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={tab === "dryrun"}
            onClick={() => (tab === "json" ? applyJson() && setTab("dryrun") : setTab("dryrun"))}
          >
            Dry run
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={tab === "changes"}
            onClick={() => (tab === "json" ? applyJson() && setTab("changes") : setTab("changes"))}
          >
            Changes
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={tab === "projection"}
            onClick={() => (tab === "json" ? applyJson() && setTab("projection") : setTab("projection"))}
          >
            Projection
          </button>
        </div>
        <span className="canvas-actions">
          <button type="button" className="button" disabled={busy} onClick={check}>
            Check
          </button>
          <button type="button" className="button default" disabled={busy || (!dirty && tab !== "json")} onClick={() => (tab === "json" ? applyJson() && save() : save())}>
            Save draft
          </button>
          <button type="button" className="button" disabled={busy} onClick={publish}>
            Publish
          </button>
        </span>
        <span className={"canvas-message " + message.kind} role="status" aria-live="polite">
          {message.text || (dirty ? "Unsaved changes." : workflow?.live_version ? `Live: version ${workflow.live_version.number}.` : "Not published yet.")}
        </span>
      </div>
      {stray.length > 0 && (
        <ul className="errorlist canvas-stray">
          {stray.map((p, i) => (
            <li key={i}>{p.path ? `${p.path}: ${p.message}` : p.message}</li>
          ))}
        </ul>
      )}
      {tab === "json" ? (
        <div className="canvas-json">
          <p className="help">
            The whole definition as JSON. Changes here show on the canvas when you go back to it, and are saved with
            “Save draft”.
          </p>
          {jsonError && <ul className="errorlist"><li>{jsonError}</li></ul>}
          <textarea aria-label="Definition (JSON)" value={jsonText} onChange={(e) => setJsonText(e.target.value)} spellCheck={false} />
        </div>
      ) : (
        <div className="canvas-body">
          <Palette catalog={catalog} onAdd={addStep} />
          <div className="canvas-flow" onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }} onDrop={onDrop}>
            <ReactFlow
              nodes={nodes}
              edges={edges}
              nodeTypes={NODE_TYPES}
              edgeTypes={EDGE_TYPES}
              onNodesChange={(changes) => setNodes((current) => applyNodeChanges(changes, current))}
              onNodeDragStop={onNodeDragStop}
              onNodesDelete={(gone) => removeSteps(gone.map((n) => n.id))}
              onEdgesDelete={onEdgesDelete}
              onConnect={onConnect}
              onNodeClick={(_e, node) => setSelected(node.id)}
              onPaneClick={() => setSelected(null)}
              fitView
              fitViewOptions={{ maxZoom: 1, padding: 0.15 }}
              minZoom={0.1}
              deleteKeyCode={["Delete", "Backspace"]}
              proOptions={{ hideAttribution: true }}
            >
              <Background gap={16} />
              <Controls showInteractive={false} />
              {steps.length > 12 && <MiniMap pannable zoomable />}
            </ReactFlow>
          </div>
          <div className="canvas-side">
            {tab === "changes" ? (
              <ChangesPanel api={api} workflowId={workflowId} savedAt={workflow?.updated_at} dirty={dirty} onResult={setChanges} />
            ) : tab === "dryrun" ? (
              <DryRunPanel api={api} workflowId={workflowId} definition={definition} result={dryResult} onResult={setDryResult} describe={decisionText} />
            ) : tab === "projection" ? (
              <ProjectionPanel api={api} workflowId={workflowId} definition={definition} dirty={dirty} result={projection} onResult={setProjection} />
            ) : selected === TRIGGER ? (
              <TriggerForm
                catalog={catalog}
                trigger={definition.trigger}
                problems={(problemsByStep.get(null) || []).filter((p) => /trigger/.test(p.path))}
                onChange={(trigger) => change({ ...definition, trigger })}
              />
            ) : step ? (
              <StepForm
                catalog={catalog}
                step={step}
                problems={(problemsByStep.get(step.id) || [])}
                onChange={(next) => replaceStep(step.id, next)}
                onDelete={() => removeSteps([step.id])}
              />
            ) : (
              <p className="help">Click a step (or “Starts when”) to change it. Connect a step by dragging from one of its exits (the dots at its bottom) to another step.</p>
            )}
          </div>
        </div>
      )}
    </div>
  );
}

function triggerText(catalog, trigger) {
  const type = trigger?.type || "?";
  const item = catalog.triggers.find((t) => t.name === type);
  const label = item ? item.label : type.replace(/_/g, " ");
  return trigger?.event ? `${label}: ${trigger.event}` : label;
}

function edgesOf(catalog, steps) {
  const ids = new Set(steps.map((s) => s.id));
  const edges = [];
  if (steps.length) {
    edges.push({ id: "start", source: TRIGGER, sourceHandle: "start", target: steps[0].id, deletable: false, type: "smoothstep" });
  }
  steps.forEach((step) => {
    exitsOf(catalog, step).forEach((exit) => {
      if (exit.target && ids.has(exit.target)) {
        edges.push({
          id: `${step.id}:${exit.handle}`,
          source: step.id,
          sourceHandle: exit.handle,
          target: exit.target,
          label: exit.label,
          type: "labelled",
          className: exit.handle === "on_error" || /timeout/.test(exit.handle) ? "canvas-edge-secondary" : "",
        });
      }
    });
  });
  return edges;
}

export default function Canvas({ config }) {
  return (
    <CanvasContext.Provider value={{ api: config.api, rules: config.rules }}>
      <ReactFlowProvider>
        <Editor config={config} />
      </ReactFlowProvider>
    </CanvasContext.Provider>
  );
}
