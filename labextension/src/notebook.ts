/**
 * The panel's view of the notebook it reviews: the open widget, cell labels as users see them (`[14]`), jumping to
 * a cell and line, and saving unsaved edits before a conversion reads the file.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ICodeCellModel } from '@jupyterlab/cells';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { NotebookPanel } from '@jupyterlab/notebook';

/** What the panel needs from JupyterLab. */
export interface ILabContext {
  app: JupyterFrontEnd;
  docManager: IDocumentManager;
  fileBrowser: IDefaultFileBrowser | null;
  languages: IEditorLanguageRegistry | null;
}

/** The notebook's open panel, if any. */
export function openNotebook(ctx: ILabContext, path: string): NotebookPanel | null {
  const widget = ctx.docManager.findWidget(path);
  return widget instanceof NotebookPanel ? widget : null;
}

/** A cell's name as users see it: its prompt's execution count (`[14]`), else `cell N` (never run, or markdown). */
export async function cellLabels(ctx: ILabContext, path: string): Promise<(cell: number) => string> {
  const counts = new Map<number, number>();
  const panel = openNotebook(ctx, path);
  if (panel) {
    await panel.context.ready;
    panel.content.widgets.forEach((cell, index) => {
      const model = cell.model as ICodeCellModel;
      if (model.type === 'code' && typeof model.executionCount === 'number') {
        counts.set(index + 1, model.executionCount);
      }
    });
  } else {
    try {
      const file = await ctx.app.serviceManager.contents.get(path, { content: true, type: 'notebook' });
      const cells = (file.content?.cells ?? []) as { cell_type: string; execution_count?: number | null }[];
      cells.forEach((cell, index) => {
        if (cell.cell_type === 'code' && typeof cell.execution_count === 'number') {
          counts.set(index + 1, cell.execution_count);
        }
      });
    } catch {
      // unreadable: plain cell numbers
    }
  }
  return (cell: number) => {
    const count = counts.get(cell);
    return count !== undefined ? `[${count}]` : `cell ${cell}`;
  };
}

/** Open the notebook, make ``cell`` (from 1) active, scroll to it and put the cursor on ``line``:``col``. */
export async function goToCell(
  ctx: ILabContext,
  path: string,
  cell: number,
  line: number | null = null,
  col: number | null = null
): Promise<void> {
  const widget = ctx.docManager.openOrReveal(path);
  if (!(widget instanceof NotebookPanel)) {
    return;
  }
  await widget.context.ready;
  await widget.revealed;
  ctx.app.shell.activateById(widget.id);
  const notebook = widget.content;
  const index = Math.max(0, Math.min(cell - 1, notebook.widgets.length - 1));
  notebook.activeCellIndex = index;
  await notebook.scrollToItem(index, 'center');
  const target = notebook.widgets[index];
  await target.ready;
  const editor = target.editor;
  if (editor && line !== null) {
    if (target.model.type === 'markdown') {
      return;
    }
    const lines = editor.model.sharedModel.getSource().split('\n');
    const row = Math.max(0, Math.min(line - 1, lines.length - 1));
    const column = Math.max(0, Math.min((col ?? 1) - 1, lines[row].length));
    notebook.mode = 'edit';
    editor.setCursorPosition({ line: row, column });
    editor.focus();
  }
}

/** Whether the open notebook's cells hold what the file on disk holds (a notebook is "dirty" as soon as it is
 * opened when JupyterLab added cell ids or upgraded its format: nothing the conversion would miss). */
async function sameSources(ctx: ILabContext, path: string, panel: NotebookPanel): Promise<boolean> {
  try {
    const file = await ctx.app.serviceManager.contents.get(path, { content: true, type: 'notebook' });
    const disk = ((file.content?.cells ?? []) as { cell_type: string; source: string | string[] }[]).map(
      c => `${c.cell_type}:${Array.isArray(c.source) ? c.source.join('') : c.source}`
    );
    const open = panel.content.widgets.map(w => `${w.model.type}:${w.model.sharedModel.getSource()}`);
    return disk.length === open.length && disk.every((text, i) => text === open[i]);
  } catch {
    return false;
  }
}

/**
 * The conversion reads the notebook file: when the open notebook has unsaved edits, ask whether to save them first.
 * Returns false when the user cancels.
 */
export async function saveOrAsk(ctx: ILabContext, path: string): Promise<boolean> {
  const panel = openNotebook(ctx, path);
  if (!panel || !panel.context.model.dirty || (await sameSources(ctx, path, panel))) {
    return true;
  }
  const name = path.split('/').pop();
  const save = Dialog.okButton({ label: 'Save and continue' });
  const saved = Dialog.warnButton({ label: 'Use the saved version' });
  const result = await showDialog({
    title: 'Unsaved changes',
    body: `${name} has changes that are not saved. nbharden reads the notebook file: save them first?`,
    buttons: [Dialog.cancelButton(), saved, save],
    defaultButton: 2
  });
  if (result.button.label === save.label && result.button.accept) {
    await panel.context.save();
    return true;
  }
  return result.button.label === saved.label;
}
