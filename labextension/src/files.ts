/**
 * The generated files as a collapsible tree: a folder per directory, an entry per file with its status, its size
 * of change and an "Open" link; expanding a file shows a merge view (changed, edited) or its highlighted code (new),
 * loaded when first opened. The manifest is hidden unless asked for. A hand-edited file offers a choice: keep my
 * edit, or overwrite it.
 */
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';

import { api, FileStatus, IFileChange } from './api';
import { codeView, mergeView } from './codeview';
import { el } from './dom';

export const MANIFEST = '.nbharden.json';

export type Choice = 'keep' | 'overwrite';

export interface IFileTreeOptions {
  files: IFileChange[];
  out: string;
  /** The review job the texts come from (null: no diff view, e.g. after the job expired). */
  jobId: string | null;
  languages: IEditorLanguageRegistry | null;
  open: (path: string) => void;
  choices: Map<string, Choice>;
  onChoice: () => void;
  /** True once written: new files exist, removed ones are gone. */
  written: boolean;
}

const LABEL: Record<FileStatus, string> = {
  new: 'new',
  changed: 'changed',
  unchanged: 'unchanged',
  edited: 'edited by hand',
  removed: 'removed'
};

function counts(diff: string): [number, number] {
  let added = 0;
  let removed = 0;
  for (const line of diff.split('\n')) {
    if (line.startsWith('+') && !line.startsWith('+++')) {
      added++;
    } else if (line.startsWith('-') && !line.startsWith('---')) {
      removed++;
    }
  }
  return [added, removed];
}

/** Folder path -> files, folders sorted, files at the top level first. */
function byFolder(files: IFileChange[]): Map<string, IFileChange[]> {
  const folders = new Map<string, IFileChange[]>();
  for (const file of files) {
    const cut = file.path.lastIndexOf('/');
    const folder = cut < 0 ? '' : file.path.slice(0, cut);
    folders.set(folder, [...(folders.get(folder) ?? []), file]);
  }
  return new Map([...folders.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

export function renderFiles(options: IFileTreeOptions): HTMLElement {
  const section = el('section', 'jp-nbharden-files');
  const shown = options.files.filter(f => f.path !== MANIFEST);
  const pending = shown.filter(f => f.status !== 'unchanged' && !f.gone).length;
  section.appendChild(el('h3', undefined, `Files (${shown.length}${pending ? `, ${pending} to write` : ''})`));
  const tree = el('div', 'jp-nbharden-tree');
  for (const [folder, files] of byFolder(options.files)) {
    const visible = files.filter(f => f.path !== MANIFEST);
    if (!visible.length && folder === '') {
      continue;
    }
    const node = el('details', 'jp-nbharden-folder');
    node.setAttribute('data-folder', folder);
    // data folders (recorded values) start closed; the code folders open when something in them changes
    node.open = !folder.startsWith('tests/data') && visible.some(f => f.status !== 'unchanged');
    const changed = visible.filter(f => f.status !== 'unchanged').length;
    const summary = el('summary', 'jp-nbharden-folder-name', `${folder || options.out}/`);
    summary.appendChild(el('span', 'jp-nbharden-folder-count', `${visible.length} file(s)${changed ? `, ${changed} changing` : ''}`));
    node.appendChild(summary);
    for (const file of visible) {
      node.appendChild(renderFile(file, options));
    }
    tree.appendChild(node);
  }
  section.appendChild(tree);
  const manifest = options.files.find(f => f.path === MANIFEST);
  if (manifest) {
    const toggle = el('label', 'jp-nbharden-show-manifest');
    const box = toggle.appendChild(el('input'));
    box.type = 'checkbox';
    toggle.appendChild(document.createTextNode(` Show the manifest (${MANIFEST}: hashes of the generated files)`));
    const entry = renderFile(manifest, options);
    entry.hidden = true;
    box.onchange = () => (entry.hidden = !box.checked);
    section.appendChild(toggle);
    section.appendChild(entry);
  }
  return section;
}

function renderFile(file: IFileChange, options: IFileTreeOptions): HTMLElement {
  const wrapper = el('div', `jp-nbharden-file jp-nbharden-file-${file.status}`);
  wrapper.setAttribute('data-path', file.path);
  wrapper.setAttribute('data-status', file.status);
  const entry = wrapper.appendChild(el('details', 'jp-nbharden-file-details'));
  const summary = el('summary', 'jp-nbharden-file-row');
  const status = file.gone ? 'deleted' : LABEL[file.status];
  summary.appendChild(el('span', `jp-nbharden-status jp-nbharden-status-${file.status}`, status));
  summary.appendChild(el('span', 'jp-nbharden-path', file.path.split('/').pop() ?? file.path));
  const [added, removed] = counts(file.diff);
  if (added || removed) {
    const size = summary.appendChild(el('span', 'jp-nbharden-size'));
    size.appendChild(el('span', 'jp-nbharden-plus', `+${added}`));
    size.appendChild(el('span', 'jp-nbharden-minus', `−${removed}`));
  }
  const exists = !file.gone && (file.status !== 'new' || options.written) && file.status !== 'removed';
  if (exists) {
    const open = el('button', 'jp-nbharden-link jp-nbharden-open', 'Open');
    open.title = `Open ${options.out}/${file.path}`;
    open.onclick = event => {
      event.preventDefault();
      event.stopPropagation();
      options.open(`${options.out}/${file.path}`);
    };
    summary.appendChild(open);
  }
  entry.appendChild(summary);
  const body = el('div', 'jp-nbharden-file-body');
  entry.appendChild(body);
  entry.addEventListener('toggle', () => {
    if (entry.open && !body.childElementCount) {
      void loadView(body, file, options);
    }
  });
  if (file.status === 'edited' && !options.written) {
    wrapper.appendChild(renderChoice(file, options));
  }
  return wrapper;
}

function renderChoice(file: IFileChange, options: IFileTreeOptions): HTMLElement {
  const box = el('div', 'jp-nbharden-choice');
  box.appendChild(el('span', undefined, 'You changed this file since nbharden wrote it:'));
  const name = `nbharden-choice-${file.path}`;
  for (const [value, text] of [
    ['keep', 'Keep my edit'],
    ['overwrite', 'Overwrite it']
  ] as [Choice, string][]) {
    const label = box.appendChild(el('label'));
    const radio = label.appendChild(el('input'));
    radio.type = 'radio';
    radio.name = name;
    radio.value = value;
    radio.checked = options.choices.get(file.path) === value;
    radio.onchange = () => {
      options.choices.set(file.path, value);
      options.onChoice();
    };
    label.appendChild(document.createTextNode(` ${text}`));
  }
  return box;
}

async function loadView(body: HTMLElement, file: IFileChange, options: IFileTreeOptions): Promise<void> {
  if (file.status === 'unchanged' || file.gone || !options.jobId) {
    body.appendChild(el('pre', 'jp-nbharden-plain', file.gone ? 'Removed from the disk.' : 'No changes.'));
    return;
  }
  body.appendChild(el('div', 'jp-nbharden-loading', 'Loading…'));
  try {
    const view = await api.file(options.jobId, file.path);
    body.textContent = '';
    if (view.too_large) {
      body.appendChild(el('pre', 'jp-nbharden-plain', 'Too large to show here; open the file instead.'));
    } else if (view.new === null) {
      body.appendChild(el('p', 'jp-nbharden-plain', 'Writing removes this file. It holds:'));
      await codeView(body.appendChild(el('div')), file.path, view.old ?? '', options.languages);
    } else if (view.old === null || file.status === 'new') {
      await codeView(body, file.path, view.new, options.languages);
    } else {
      await mergeView(body, file.path, view.old, view.new, options.languages);
    }
  } catch (reason) {
    body.textContent = '';
    body.appendChild(el('pre', 'jp-nbharden-plain', file.diff || `Cannot show the file: ${String(reason)}`));
  }
}
