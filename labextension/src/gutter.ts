/**
 * Findings as gutter markers in the notebook's cell editors: a marker (with the finding as its tooltip) on each
 * line a finding concerns, the line tinted, and the cell flagged. One extension per editor, injected once; a new
 * review replaces the markers (an effect), closing the panel clears them.
 */
import { RangeSetBuilder, StateEffect, StateField } from '@codemirror/state';
import { Decoration, DecorationSet, EditorView, GutterMarker, gutter } from '@codemirror/view';
import { CodeMirrorEditor } from '@jupyterlab/codemirror';
import { NotebookPanel } from '@jupyterlab/notebook';

import { IFinding } from './api';

interface IMark {
  line: number; // from 1
  severity: string;
  title: string;
}

const setMarks = StateEffect.define<IMark[]>();

class FindingMarker extends GutterMarker {
  constructor(
    readonly severity: string,
    readonly title: string
  ) {
    super();
  }

  eq(other: FindingMarker): boolean {
    return other.severity === this.severity && other.title === this.title;
  }

  toDOM(): Node {
    const node = document.createElement('span');
    node.className = `jp-nbharden-gutter-marker jp-nbharden-severity-${this.severity}`;
    node.title = this.title;
    node.textContent = this.severity === 'error' ? '✖' : this.severity === 'info' ? 'ℹ' : '▲';
    return node;
  }
}

const marks = StateField.define<IMark[]>({
  create: () => [],
  update(value, tr) {
    for (const effect of tr.effects) {
      if (effect.is(setMarks)) {
        return effect.value;
      }
    }
    return value;
  }
});

function lineStarts(view: EditorView, list: IMark[]): { from: number; mark: IMark }[] {
  const doc = view.state.doc;
  return list
    .filter(m => m.line >= 1 && m.line <= doc.lines)
    .map(m => ({ from: doc.line(m.line).from, mark: m }))
    .sort((a, b) => a.from - b.from);
}

const markerGutter = gutter({
  class: 'jp-nbharden-gutter',
  markers: view => {
    const builder = new RangeSetBuilder<GutterMarker>();
    let last = -1;
    for (const { from, mark } of lineStarts(view, view.state.field(marks))) {
      if (from !== last) {
        builder.add(from, from, new FindingMarker(mark.severity, mark.title));
        last = from;
      }
    }
    return builder.finish();
  },
  initialSpacer: () => new FindingMarker('warning', '')
});

const lineTint = EditorView.decorations.compute([marks], state => {
  const builder = new RangeSetBuilder<Decoration>();
  let last = -1;
  const doc = state.doc;
  const list = state
    .field(marks)
    .filter(m => m.line >= 1 && m.line <= doc.lines)
    .map(m => ({ from: doc.line(m.line).from, severity: m.severity }))
    .sort((a, b) => a.from - b.from);
  for (const { from, severity } of list) {
    if (from !== last) {
      builder.add(from, from, Decoration.line({ class: `jp-nbharden-flagged-line jp-nbharden-line-${severity}` }));
      last = from;
    }
  }
  return builder.finish() as DecorationSet;
});

const extension = [marks, markerGutter, lineTint];
const injected = new WeakSet<EditorView>();

function apply(editor: CodeMirrorEditor, list: IMark[]): void {
  const view = editor.editor;
  if (!injected.has(view)) {
    editor.injectExtension(extension);
    injected.add(view);
  }
  view.dispatch({ effects: setMarks.of(list) });
}

/** Put ``findings`` on the cells of ``panel`` (replacing earlier ones); ``label`` names a cell as users see it. */
export function showFindings(
  panel: NotebookPanel,
  findings: IFinding[],
  label: (cell: number) => string
): void {
  const byCell = new Map<number, IMark[]>();
  for (const f of findings) {
    if (f.cell === null) {
      continue;
    }
    const list = byCell.get(f.cell) ?? [];
    const where = `${label(f.cell)}${f.line !== null ? ` line ${f.line}` : ''}`;
    list.push({ line: f.line ?? 1, severity: f.severity, title: `${f.code} (${where}): ${f.message}` });
    byCell.set(f.cell, list);
  }
  panel.content.widgets.forEach((cell, index) => {
    const list = byCell.get(index + 1) ?? [];
    cell.node.classList.toggle('jp-nbharden-flagged-cell', list.length > 0);
    if (list.length) {
      cell.node.setAttribute('data-nbharden-findings', String(list.length));
    } else {
      cell.node.removeAttribute('data-nbharden-findings');
    }
    void cell.ready.then(() => {
      if (cell.editor instanceof CodeMirrorEditor && (list.length || injected.has(cell.editor.editor))) {
        apply(cell.editor, list);
      }
    });
  });
}

/** Remove every marker from ``panel``. */
export function clearFindings(panel: NotebookPanel): void {
  showFindings(panel, [], () => '');
}
