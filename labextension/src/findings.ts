/**
 * The findings list: grouped by severity, each labelled with the cell as users see it (`[14]:3`), a click jumps to
 * the cell and line, and "Explain" shows the rule's documentation (from GET /nbharden/rules, fetched once).
 */
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';

import { api, IFinding, IRule } from './api';
import { codeView } from './codeview';
import { el } from './dom';

const SEVERITIES: { key: IFinding['severity']; title: string }[] = [
  { key: 'error', title: 'Errors' },
  { key: 'warning', title: 'Warnings' },
  { key: 'info', title: 'Information' }
];

let rules: Promise<Map<string, IRule>> | null = null;

function rule(code: string): Promise<IRule | undefined> {
  if (!rules) {
    rules = api
      .rules()
      .then(data => new Map(data.rules.map(r => [r.code, r])))
      .catch(reason => {
        rules = null;
        throw reason;
      });
  }
  return rules.then(map => map.get(code));
}

async function explain(host: HTMLElement, code: string, languages: IEditorLanguageRegistry | null): Promise<void> {
  host.textContent = 'Loading…';
  let doc: IRule | undefined;
  try {
    doc = await rule(code);
  } catch (reason) {
    host.textContent = `Cannot load the rule's documentation: ${String(reason)}`;
    return;
  }
  host.textContent = '';
  if (!doc) {
    host.textContent = `No documentation for ${code}.`;
    return;
  }
  host.appendChild(el('h4', undefined, `${doc.code} ${doc.name}`));
  host.appendChild(el('p', 'jp-nbharden-rule-summary', doc.summary));
  host.appendChild(el('p', undefined, doc.why));
  for (const [title, text] of [
    ['Example', doc.example],
    ['What nbharden generates', doc.after]
  ]) {
    if (text) {
      host.appendChild(el('h5', undefined, title));
      await codeView(host.appendChild(el('div', 'jp-nbharden-rule-code')), 'example.py', text.trim(), languages);
    }
  }
  const grade =
    doc.fix === 'safe' ? 'Safe fix, applied.' : doc.fix === 'unsafe' ? 'Unsafe fix, applied only with --unsafe-fixes.' : 'Reported only.';
  host.appendChild(el('p', 'jp-nbharden-rule-fix', doc.fix_note || grade));
}

/** The findings section. ``goTo`` jumps to a finding's cell and line. */
export function renderFindings(
  findings: IFinding[],
  label: (cell: number) => string,
  goTo: (finding: IFinding) => void,
  languages: IEditorLanguageRegistry | null
): HTMLElement {
  const section = el('section', 'jp-nbharden-findings');
  section.appendChild(el('h3', undefined, `Findings (${findings.length})`));
  for (const { key, title } of SEVERITIES) {
    const group = findings.filter(f => f.severity === key);
    if (!group.length) {
      continue;
    }
    const details = el('details', `jp-nbharden-finding-group jp-nbharden-severity-${key}`);
    details.open = true;
    details.setAttribute('data-severity', key);
    details.appendChild(el('summary', undefined, `${title} (${group.length})`));
    const list = el('ul', 'jp-nbharden-finding-list');
    for (const f of group) {
      list.appendChild(renderFinding(f, label, goTo, languages));
    }
    details.appendChild(list);
    section.appendChild(details);
  }
  return section;
}

function renderFinding(
  f: IFinding,
  label: (cell: number) => string,
  goTo: (finding: IFinding) => void,
  languages: IEditorLanguageRegistry | null
): HTMLElement {
  const item = el('li', `jp-nbharden-finding jp-nbharden-severity-${f.severity}`);
  item.setAttribute('data-code', f.code);
  const row = el('div', 'jp-nbharden-finding-row');
  row.appendChild(el('span', 'jp-nbharden-code', f.code));
  const where = f.cell !== null ? `${label(f.cell)}${f.line !== null ? `:${f.line}` : ''}` : '';
  const place = row.appendChild(el('span', 'jp-nbharden-where', where));
  if (f.cell !== null) {
    place.setAttribute('data-cell', String(f.cell));
  }
  row.appendChild(el('span', 'jp-nbharden-message', f.message));
  if (f.applied) {
    row.appendChild(el('span', 'jp-nbharden-applied', 'fixed'));
  }
  const doc = el('div', 'jp-nbharden-explanation');
  doc.hidden = true;
  const more = el('button', 'jp-nbharden-link jp-nbharden-explain', 'Explain');
  more.onclick = event => {
    event.stopPropagation();
    doc.hidden = !doc.hidden;
    more.textContent = doc.hidden ? 'Explain' : 'Hide';
    if (!doc.hidden && !doc.childElementCount) {
      void explain(doc, f.code, languages);
    }
  };
  row.appendChild(more);
  if (f.cell !== null) {
    row.title = `Go to ${where}`;
    row.classList.add('jp-nbharden-clickable');
    row.onclick = () => goTo(f);
  }
  item.appendChild(row);
  item.appendChild(doc);
  return item;
}
