/* Positions for steps that have none, laid out top to bottom by elkjs (loaded only then). */

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 86;

export function needsLayout(steps) {
  return steps.some((s) => !s.position || typeof s.position.x !== "number" || typeof s.position.y !== "number");
}

/* {step id: {x, y}} for every node, the trigger included. */
export async function layoutPositions(nodes, edges) {
  const { default: ELK } = await import("elkjs/lib/elk.bundled.js");
  const elk = new ELK();
  const graph = await elk.layout({
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.spacing.nodeNode": "40",
      "elk.layered.spacing.nodeNodeBetweenLayers": "60",
      // Fewer crossing-minimisation passes (default 7): a few hundred steps lay out in a fraction of the time.
      "elk.layered.thoroughness": "2",
    },
    children: nodes.map((n) => ({ id: n.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
    edges: edges.map((e) => ({ id: e.id, sources: [e.source], targets: [e.target] })),
  });
  return Object.fromEntries(graph.children.map((c) => [c.id, { x: Math.round(c.x), y: Math.round(c.y) }]));
}
