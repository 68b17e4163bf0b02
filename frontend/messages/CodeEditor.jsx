/*
 * A CodeMirror 6 editor for one Liquid field (HTML or text), as a React component: `value` in,
 * `onChange(text)` out. A value changed from outside (the JSON box) replaces the text; the line a
 * problem names (`errorLine`) is marked.
 */
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { html } from "@codemirror/lang-html";
import { liquid } from "@codemirror/lang-liquid";
import { defaultHighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { EditorState, StateEffect, StateField } from "@codemirror/state";
import { Decoration, EditorView, keymap, lineNumbers } from "@codemirror/view";
import { useEffect, useRef } from "react";

const setErrorLine = StateEffect.define();

const errorLineField = StateField.define({
  create: () => Decoration.none,
  update(marks, transaction) {
    let next = marks.map(transaction.changes);
    for (const effect of transaction.effects) {
      if (!effect.is(setErrorLine)) continue;
      const line = effect.value;
      next =
        line && line <= transaction.state.doc.lines
          ? Decoration.set([Decoration.line({ class: "cm-problem-line" }).range(transaction.state.doc.line(line).from)])
          : Decoration.none;
    }
    return next;
  },
  provide: (field) => EditorView.decorations.from(field),
});

export default function CodeEditor({ value, onChange, labelId, describedBy, errorLine, isHtml }) {
  const host = useRef(null);
  const view = useRef(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    const editor = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: value || "",
        extensions: [
          lineNumbers(),
          history(),
          keymap.of([...defaultKeymap, ...historyKeymap]),
          syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
          // Liquid over HTML for the HTML body; the text fields are Liquid in plain text, which
          // the same grammar reads well enough (tags and outputs stand out).
          isHtml ? liquid({ base: html() }) : liquid(),
          EditorView.lineWrapping,
          errorLineField,
          EditorView.contentAttributes.of({
            "aria-labelledby": labelId,
            ...(describedBy ? { "aria-describedby": describedBy } : {}),
          }),
          EditorView.updateListener.of((update) => {
            if (update.docChanged) changed.current(update.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = editor;
    return () => editor.destroy();
    // The editor is made once; later values arrive through the effect below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const editor = view.current;
    const text = value || "";
    if (editor && editor.state.doc.toString() !== text) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: text } });
    }
  }, [value]);

  useEffect(() => {
    if (view.current) view.current.dispatch({ effects: setErrorLine.of(errorLine || null) });
  }, [errorLine, value]);

  return <div className="message-code" ref={host} />;
}
