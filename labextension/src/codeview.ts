/**
 * Read-only CodeMirror 6 views on JupyterLab's own editor stack (its theme, its language registry): a unified
 * merge view of a changed file (deleted lines inline, unchanged stretches collapsed) and plain highlighted code for
 * a new file.
 */
import { unifiedMergeView } from '@codemirror/merge';
import { EditorState, Extension } from '@codemirror/state';
import { EditorView, lineNumbers } from '@codemirror/view';
import { IEditorLanguageRegistry, jupyterTheme } from '@jupyterlab/codemirror';

/** The language support for ``path`` (Python for .py, JSON, TOML, ...) from JupyterLab's registry. */
async function languageFor(
  languages: IEditorLanguageRegistry | null,
  path: string
): Promise<Extension[]> {
  if (!languages) {
    return [];
  }
  const found = languages.findByFileName(path.split('/').pop() ?? path);
  if (!found) {
    return [];
  }
  const language = await languages.getLanguage(found);
  return language?.support ? [language.support] : [];
}

function base(language: Extension[]): Extension[] {
  return [
    lineNumbers(),
    jupyterTheme,
    EditorView.lineWrapping,
    EditorState.readOnly.of(true),
    EditorView.editable.of(false),
    ...language
  ];
}

/** A read-only editor of ``text`` in ``host``. */
export async function codeView(
  host: HTMLElement,
  path: string,
  text: string,
  languages: IEditorLanguageRegistry | null
): Promise<EditorView> {
  const view = new EditorView({
    state: EditorState.create({ doc: text, extensions: base(await languageFor(languages, path)) }),
    parent: host
  });
  host.classList.add('jp-nbharden-codeview');
  return view;
}

/** A unified merge view: ``current`` (the disk) against ``generated``, changes highlighted word by word. */
export async function mergeView(
  host: HTMLElement,
  path: string,
  current: string,
  generated: string,
  languages: IEditorLanguageRegistry | null
): Promise<EditorView> {
  const extensions = [
    ...base(await languageFor(languages, path)),
    unifiedMergeView({
      original: current,
      mergeControls: false,
      highlightChanges: true,
      gutter: true,
      syntaxHighlightDeletions: true,
      collapseUnchanged: { margin: 3, minSize: 6 }
    })
  ];
  const view = new EditorView({
    state: EditorState.create({ doc: generated, extensions }),
    parent: host
  });
  host.classList.add('jp-nbharden-merge');
  return view;
}
