/**
 * nbharden in JupyterLab: the "Harden notebook" command and its review panel (docs/lab.md).
 *
 * Two commands, so each one knows which notebook it acts on at the moment it runs:
 * - ``nbharden:harden`` (palette, notebook toolbar): the ``path`` argument, else the current notebook widget;
 * - ``nbharden:harden-file`` (file browser context menu): the notebook selected in the file browser (the item the
 *   menu was opened on), read when the menu item is clicked.
 * The old single command asked ``app.contextMenuHitTest``, which keeps returning the last right-clicked item after
 * its menu closed: a toolbar click then hardened that item instead of the notebook it belonged to.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { buildIcon } from '@jupyterlab/ui-components';

import { ILabContext } from './notebook';
import { ReviewPanel } from './panel';

const COMMAND = 'nbharden:harden';
const FILE_COMMAND = 'nbharden:harden-file';
const PLUGIN_ID = 'nbharden:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Harden a notebook into a typed, tested Python package and review the diff.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ICommandPalette, INotebookTracker, IDefaultFileBrowser, ILayoutRestorer, IEditorLanguageRegistry],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    fileBrowser: IDefaultFileBrowser | null,
    restorer: ILayoutRestorer | null,
    languages: IEditorLanguageRegistry | null
  ) => {
    const tracker = new WidgetTracker<MainAreaWidget<ReviewPanel>>({ namespace: 'nbharden' });
    const ctx: ILabContext = { app, docManager, fileBrowser, languages };

    /** The panel of ``path``: the open one, or a new one (a tab next to the other review panels). */
    const panelFor = (path: string): MainAreaWidget<ReviewPanel> => {
      let main = tracker.find(w => w.content.notebookPath === path);
      if (main && !main.isDisposed) {
        return main;
      }
      const panel = new ReviewPanel(path, ctx);
      main = new MainAreaWidget({ content: panel });
      main.id = panel.id;
      main.title.label = panel.title.label;
      main.title.closable = true;
      main.title.icon = buildIcon;
      const other = tracker.currentWidget ?? tracker.find(() => true);
      void tracker.add(main);
      app.shell.add(main, 'main', other && !other.isDisposed ? { mode: 'tab-after', ref: other.id } : { mode: 'split-right' });
      return main;
    };

    const harden = async (path: string | null, restored = false): Promise<void> => {
      if (!path) {
        window.alert('Open or select a notebook to harden.');
        return;
      }
      const main = panelFor(path);
      if (restored) {
        main.content.restored();
        return;
      }
      app.shell.activateById(main.id);
      await main.content.refresh();
    };

    app.commands.addCommand(COMMAND, {
      label: 'Harden notebook',
      caption: 'Convert this notebook into a typed, tested Python package and review the diff',
      icon: buildIcon,
      execute: args => {
        const given = typeof args.path === 'string' && args.path ? args.path : null;
        return harden(given ?? notebooks?.currentWidget?.context.path ?? null, args.restored === true);
      }
    });

    app.commands.addCommand(FILE_COMMAND, {
      label: 'Harden notebook',
      caption: 'Convert the selected notebook into a typed, tested Python package and review the diff',
      icon: buildIcon,
      execute: () => {
        const selected = fileBrowser ? [...fileBrowser.selectedItems()] : [];
        const item = selected.find(i => i.type === 'notebook');
        return harden(item?.path ?? null);
      }
    });

    if (palette) {
      palette.addItem({ command: COMMAND, category: 'nbharden' });
    }
    if (restorer) {
      void restorer.restore(tracker, {
        command: COMMAND,
        args: w => ({ path: w.content.notebookPath, restored: true }),
        name: w => w.content.notebookPath
      });
    }
  }
};

export default plugin;
