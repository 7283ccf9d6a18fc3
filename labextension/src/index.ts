/**
 * nbharden in JupyterLab: the "Harden notebook" command and its review panel.
 *
 * The command (palette, notebook toolbar, file browser context menu) asks the server extension
 * (POST /nbharden/convert) for the change set of a notebook's conversion, shows the findings and
 * the diff per file in a panel, and writes the files when the user clicks "Write files".
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { buildIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

const COMMAND = 'nbharden:harden';
const PLUGIN_ID = 'nbharden:plugin';

/** One generated file in the change set. */
interface IFileChange {
  path: string;
  status: 'new' | 'changed' | 'unchanged' | 'edited' | 'removed';
  diff: string;
}

/** One finding, located by cell (from 1) and line. */
interface IFinding {
  code: string;
  message: string;
  path: string;
  cell: number | null;
  line: number | null;
  col: number | null;
  severity: string;
  fix: string;
  applied: boolean;
}

/** The answer of POST /nbharden/convert. */
interface IChangeSet {
  notebook: string;
  out: string;
  files: IFileChange[];
  findings: IFinding[];
  tests: Record<string, unknown> | null;
  blocked: Record<string, string>;
  written: string[] | null;
}

/** An error answer: the one-line message plus where it happened. */
interface IErrorBody {
  message: string;
  kind?: string;
  cell?: number | null;
  line?: number | null;
  paths?: string[];
}

/** A failed request, with the server's JSON body when it sent one. */
class HardenError extends Error {
  constructor(
    readonly status: number,
    readonly body: IErrorBody
  ) {
    super(body.message);
  }
}

/** POST /nbharden/convert. Throws HardenError with the server's message on any failure. */
async function requestConvert(
  path: string,
  write: boolean,
  force = false
): Promise<IChangeSet> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nbharden', 'convert');
  let response: Response;
  try {
    // makeRequest adds the token and the XSRF header.
    response = await ServerConnection.makeRequest(
      url,
      { method: 'POST', body: JSON.stringify({ path, write, force }) },
      settings
    );
  } catch (reason) {
    throw new HardenError(0, {
      message: `cannot reach the Jupyter server: ${String(reason)}`
    });
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const body =
      data && typeof data === 'object' && 'message' in data
        ? (data as IErrorBody)
        : {
            message:
              response.status === 404
                ? 'the nbharden server extension is not enabled (jupyter server extension list)'
                : `server error ${response.status}: ${text.slice(0, 200)}`
          };
    throw new HardenError(response.status, body);
  }
  return data as IChangeSet;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** The review panel: progress, findings (click to jump to the cell), diffs, "Write files". */
class ReviewPanel extends Widget {
  constructor(
    readonly notebookPath: string,
    private readonly openCell: (path: string, cell: number) => Promise<void>
  ) {
    super();
    this.addClass('jp-nbharden-Review');
    this.id = `nbharden-review-${notebookPath}`;
    this.title.label = `Harden: ${notebookPath.split('/').pop()}`;
    this.title.closable = true;
  }

  /** Convert (no write) and render the result. */
  async refresh(): Promise<void> {
    this.renderBusy('Hardening notebook… (analysing, generating and formatting the package)');
    try {
      this.renderChanges(await requestConvert(this.notebookPath, false), null);
    } catch (reason) {
      this.renderError(reason);
    }
  }

  private async writeFiles(force: boolean): Promise<void> {
    this.renderBusy('Writing files…');
    try {
      const result = await requestConvert(this.notebookPath, true, force);
      this.renderChanges(result, result.written ?? []);
    } catch (reason) {
      this.renderError(reason);
    }
  }

  private clear(): HTMLElement {
    this.node.textContent = '';
    const header = el('div', 'jp-nbharden-header');
    header.appendChild(el('h2', 'jp-nbharden-title', `nbharden: ${this.notebookPath}`));
    this.node.appendChild(header);
    return header;
  }

  private renderBusy(message: string): void {
    this.clear();
    const busy = el('div', 'jp-nbharden-busy');
    busy.appendChild(el('div', 'jp-nbharden-spinner'));
    busy.appendChild(el('span', undefined, message));
    this.node.appendChild(busy);
  }

  private renderError(reason: unknown): void {
    this.clear();
    const box = el('div', 'jp-nbharden-error');
    box.setAttribute('role', 'alert');
    const body: IErrorBody =
      reason instanceof HardenError ? reason.body : { message: String(reason) };
    const heading =
      body.kind === 'execution'
        ? 'The notebook failed when it was run'
        : body.kind === 'input'
          ? 'nbharden cannot read this notebook'
          : body.kind === 'edited'
            ? 'Generated files were edited by hand'
            : 'nbharden failed';
    box.appendChild(el('h3', undefined, heading));
    box.appendChild(el('pre', 'jp-nbharden-error-message', body.message));
    if (typeof body.cell === 'number') {
      const cell = body.cell;
      const jump = el('button', 'jp-mod-styled jp-mod-accept', `Go to cell ${cell}`);
      jump.onclick = () => void this.openCell(this.notebookPath, cell);
      box.appendChild(jump);
    }
    const retry = el('button', 'jp-mod-styled', 'Try again');
    retry.onclick = () => void this.refresh();
    box.appendChild(retry);
    if (body.kind === 'edited') {
      const force = el('button', 'jp-mod-styled jp-mod-warn', 'Overwrite my edits');
      force.onclick = () => void this.writeFiles(true);
      box.appendChild(force);
    }
    this.node.appendChild(box);
  }

  private renderChanges(changes: IChangeSet, written: string[] | null): void {
    const header = this.clear();
    const pending = changes.files.filter(f => f.status !== 'unchanged');
    const summary = el('p', 'jp-nbharden-summary');
    summary.textContent =
      written !== null
        ? `Wrote ${written.length} file(s) to ${changes.out}/.`
        : `${pending.length} of ${changes.files.length} file(s) to write to ${changes.out}/, ` +
          `${changes.findings.length} finding(s).`;
    header.appendChild(summary);
    const actions = el('div', 'jp-nbharden-actions');
    const write = el('button', 'jp-mod-styled jp-mod-accept jp-nbharden-write', 'Write files');
    write.disabled = written !== null || pending.length === 0;
    write.onclick = () => void this.writeFiles(false);
    actions.appendChild(write);
    const again = el('button', 'jp-mod-styled', 'Refresh');
    again.onclick = () => void this.refresh();
    actions.appendChild(again);
    header.appendChild(actions);
    if (written !== null) {
      const done = el('div', 'jp-nbharden-written');
      done.setAttribute('data-written', String(written.length));
      done.textContent = written.length
        ? `Written: ${written.join(', ')}`
        : 'Nothing to write: every file is up to date.';
      header.appendChild(done);
    }
    const blocked = Object.entries(changes.blocked ?? {});
    if (blocked.length) {
      const warn = el('div', 'jp-nbharden-error');
      warn.textContent = `Cannot write: ${blocked.map(([p, why]) => `${p} (${why})`).join('; ')}`;
      header.appendChild(warn);
    }

    this.node.appendChild(this.renderFindings(changes.findings));
    this.node.appendChild(this.renderFiles(changes.files));
  }

  private renderFindings(findings: IFinding[]): HTMLElement {
    const section = el('section', 'jp-nbharden-findings');
    section.appendChild(el('h3', undefined, `Findings (${findings.length})`));
    const list = el('ul', 'jp-nbharden-finding-list');
    for (const f of findings) {
      const item = el('li', `jp-nbharden-finding jp-nbharden-severity-${f.severity}`);
      item.appendChild(el('span', 'jp-nbharden-code', f.code));
      const where = f.cell !== null ? `cell ${f.cell}${f.line !== null ? `:${f.line}` : ''}` : '';
      item.appendChild(el('span', 'jp-nbharden-where', where));
      item.appendChild(el('span', 'jp-nbharden-message', f.message));
      if (f.applied) {
        item.appendChild(el('span', 'jp-nbharden-applied', 'fixed'));
      }
      if (f.cell !== null) {
        const cell = f.cell;
        item.title = `Go to cell ${cell}`;
        item.classList.add('jp-nbharden-clickable');
        item.onclick = () => void this.openCell(this.notebookPath, cell);
      }
      list.appendChild(item);
    }
    section.appendChild(list);
    return section;
  }

  private renderFiles(files: IFileChange[]): HTMLElement {
    const section = el('section', 'jp-nbharden-files');
    section.appendChild(el('h3', undefined, `Files (${files.length})`));
    for (const file of files) {
      const details = el('details', 'jp-nbharden-file');
      details.open = file.status !== 'unchanged' && !file.path.endsWith('.json');
      const summary = el('summary');
      summary.appendChild(el('span', `jp-nbharden-status jp-nbharden-status-${file.status}`, file.status));
      summary.appendChild(el('span', 'jp-nbharden-path', file.path));
      details.appendChild(summary);
      if (file.diff) {
        const pre = el('pre', 'jp-nbharden-diff');
        for (const line of file.diff.split('\n')) {
          let cls = 'jp-nbharden-ctx';
          if (line.startsWith('+++') || line.startsWith('---')) {
            cls = 'jp-nbharden-filehdr';
          } else if (line.startsWith('@@')) {
            cls = 'jp-nbharden-hunk';
          } else if (line.startsWith('+')) {
            cls = 'jp-nbharden-add';
          } else if (line.startsWith('-')) {
            cls = 'jp-nbharden-del';
          }
          pre.appendChild(el('div', cls, line || ' '));
        }
        details.appendChild(pre);
      }
      section.appendChild(details);
    }
    return section;
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Harden a notebook into a typed, tested Python package and review the diff.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ICommandPalette, INotebookTracker, IDefaultFileBrowser, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    fileBrowser: IDefaultFileBrowser | null,
    restorer: ILayoutRestorer | null
  ) => {
    const tracker = new WidgetTracker<MainAreaWidget<ReviewPanel>>({ namespace: 'nbharden' });

    const openCell = async (path: string, cell: number): Promise<void> => {
      const widget = docManager.openOrReveal(path);
      if (!(widget instanceof NotebookPanel)) {
        return;
      }
      await widget.context.ready;
      await widget.revealed;
      const index = Math.max(0, Math.min(cell - 1, widget.content.widgets.length - 1));
      widget.content.activeCellIndex = index;
      await widget.content.scrollToItem(index, 'center');
      app.shell.activateById(widget.id);
    };

    /** The notebook the command acts on: the selected notebook in the file browser when invoked
     * from its context menu, else the current notebook. */
    const target = (args: { path?: unknown; fromBrowser?: unknown }): string | null => {
      if (typeof args.path === 'string' && args.path) {
        return args.path;
      }
      const contextNode = app.contextMenuHitTest(node =>
        node.classList.contains('jp-DirListing-item')
      );
      if (contextNode && fileBrowser) {
        for (const item of fileBrowser.selectedItems()) {
          if (item.type === 'notebook') {
            return item.path;
          }
        }
      }
      return notebooks?.currentWidget?.context.path ?? null;
    };

    app.commands.addCommand(COMMAND, {
      label: 'Harden notebook',
      caption: 'Convert this notebook into a typed, tested Python package and review the diff',
      icon: buildIcon,
      isEnabled: () => true,
      execute: async args => {
        const path = target(args as { path?: unknown });
        if (!path) {
          window.alert('Open or select a notebook to harden.');
          return;
        }
        let main = tracker.find(w => w.content.notebookPath === path);
        if (!main || main.isDisposed) {
          const panel = new ReviewPanel(path, openCell);
          main = new MainAreaWidget({ content: panel });
          main.id = panel.id;
          main.title.label = panel.title.label;
          main.title.closable = true;
          main.title.icon = buildIcon;
          void tracker.add(main);
          app.shell.add(main, 'main', { mode: 'split-right' });
        }
        app.shell.activateById(main.id);
        await main.content.refresh();
      }
    });

    if (palette) {
      palette.addItem({ command: COMMAND, category: 'nbharden' });
    }
    if (restorer) {
      void restorer.restore(tracker, {
        command: COMMAND,
        args: w => ({ path: w.content.notebookPath }),
        name: w => w.content.notebookPath
      });
    }
  }
};

export default plugin;
