/* State that outlives its panel: the side panel's tabs unmount it, and the person coming back to
   the dry run or the projection finds the contact, events and segment they had picked. Kept for
   the page's life, per workflow and name. */
import { useCallback, useState } from "react";

const kept = new Map();

export function useRemembered(key, initial) {
  const [value, setValue] = useState(() => (kept.has(key) ? kept.get(key) : typeof initial === "function" ? initial() : initial));
  const set = useCallback(
    (next) =>
      setValue((current) => {
        const resolved = typeof next === "function" ? next(current) : next;
        kept.set(key, resolved);
        return resolved;
      }),
    [key],
  );
  return [value, set];
}
