/**
 * The review panel of one notebook: starts a review job (recorded or not), shows its progress with Cancel, then the
 * findings and the files; writes with the user's choices, runs the generated tests. One panel per notebook, reused.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { api, HardenError, IErrorBody, IFinding, IJob, IProgress, IReview, ITestRun } from './api';
import { button, el } from './dom';
import { Choice, renderFiles } from './files';
import { renderFindings } from './findings';
import { clearFindings, showFindings } from './gutter';
import { cellLabels, goToCell, ILabContext, openNotebook, saveOrAsk } from './notebook';

const STAGES: Record<string, string> = {
  queued: 'Waiting for the notebook’s previous job…',
  load: 'Reading the notebook…',
  analyse: 'Analysing the cells…',
  record: 'Running the notebook…',
  transform: 'Generating the package…',
  format: 'Formatting the code…',
  review: 'Comparing with the files on disk…',
  tests: 'Running the generated tests…'
};

export class ReviewPanel extends Widget {
  /** The user's choice; null until the output folder's status says what the default is. */
  record: boolean | null = null;
  private review: IReview | null = null;
  private reviewJob: string | null = null;
  private running: IJob | null = null;
  private label: (cell: number) => string = cell => `cell ${cell}`;
  private choices = new Map<string, Choice>();
  private written = false;
  private tests: ITestRun | null = null;
  private notice: HTMLElement | null = null;
  private timer = 0;

  constructor(
    readonly notebookPath: string,
    private readonly ctx: ILabContext
  ) {
    super();
    this.addClass('jp-nbharden-Review');
    this.id = `nbharden-review-${notebookPath}`;
    this.title.label = `Harden: ${notebookPath.split('/').pop()}`;
    this.title.closable = true;
  }

  dispose(): void {
    if (this.running) {
      void api.cancel(this.running.id).catch(() => undefined);
    }
    window.clearInterval(this.timer);
    const notebook = openNotebook(this.ctx, this.notebookPath);
    if (notebook) {
      clearFindings(notebook);
    }
    super.dispose();
  }

  /** Review the notebook again (a new job; one still running is cancelled by the server). */
  async refresh(): Promise<void> {
    this.renderProgress(null, 'Starting…');
    let recorded = false;
    try {
      recorded = (await api.status(this.notebookPath)).recorded;
    } catch (reason) {
      this.renderError(reason);
      return;
    }
    if (this.record === null) {
      this.record = recorded;
    }
    if (!(await saveOrAsk(this.ctx, this.notebookPath))) {
      this.review ? this.renderReview() : this.renderIdle('Not started: the notebook has unsaved changes.');
      return;
    }
    this.renderProgress(null, 'Starting…');
    try {
      const job = await api.startReview(this.notebookPath, this.record);
      this.label = await cellLabels(this.ctx, this.notebookPath);
      await this.follow(job);
    } catch (reason) {
      this.renderError(reason);
    }
  }

  /** Poll ``job`` until it ends, showing its progress; then show its result. */
  private async follow(job: IJob): Promise<void> {
    this.running = job;
    this.renderProgress(job);
    let current = job;
    while (current.state === 'running') {
      const next = await api.poll(current.id, current.version);
      if (this.running?.id !== job.id) {
        return; // cancelled from the panel, or replaced by a newer job
      }
      for (const event of next.events ?? []) {
        this.showCell(next, event);
      }
      current = next;
      this.running = current;
      this.updateStage(current);
    }
    this.running = null;
    window.clearInterval(this.timer);
    if (current.state === 'cancelled') {
      this.renderIdle('Cancelled. Nothing was written.');
    } else if (current.state === 'failed' && current.kind === 'tests' && this.review) {
      this.renderReview();
      this.say(current.error?.message ?? 'the tests could not run', true);
    } else if (current.state === 'failed') {
      this.renderError(new HardenError(0, current.error ?? { message: 'the job failed' }));
    } else if (current.kind === 'tests') {
      this.tests = current.result?.tests ?? null;
      this.renderReview();
    } else if (current.result) {
      this.reviewJob = current.id;
      this.review = current.result;
      this.written = false;
      this.tests = null;
      this.choices.clear();
      this.renderReview();
    }
  }

  /** Cancel the running job: the server kills the kernel; the panel is usable again as soon as it answers. */
  async cancel(): Promise<void> {
    const job = this.running;
    if (!job) {
      return;
    }
    this.running = null;
    window.clearInterval(this.timer);
    const box = this.node.querySelector('.jp-nbharden-progress');
    box?.setAttribute('data-state', 'cancelling');
    try {
      await api.cancel(job.id);
    } catch {
      // gone already: nothing left to stop
    }
    if (job.kind === 'tests' && this.review) {
      this.renderReview();
      this.say('Test run cancelled.');
    } else {
      this.renderIdle('Cancelled. Nothing was written.');
    }
  }

  // --- writing -------------------------------------------------------------------------------------------------

  private async write(extra: { replace_recording?: boolean; accept_changes?: boolean } = {}): Promise<void> {
    const review = this.review;
    const job = this.reviewJob;
    if (!review || !job) {
      return;
    }
    if (review.drops_recording.length && !extra.replace_recording) {
      const how = await this.askRecording(review.drops_recording.length);
      if (how === 'record') {
        this.record = true;
        return this.refresh();
      }
      if (how !== 'replace') {
        return;
      }
      extra = { ...extra, replace_recording: true };
    }
    const edited = review.files.filter(f => f.status === 'edited').map(f => f.path);
    const open = edited.filter(p => !this.choices.has(p));
    if (open.length) {
      this.say(`Choose what happens to your edits in ${open.length} file(s) first: keep them, or overwrite them.`, true);
      this.node.querySelector(`.jp-nbharden-file[data-path="${CSS.escape(open[0])}"]`)?.scrollIntoView();
      return;
    }
    const keep = edited.filter(p => this.choices.get(p) === 'keep');
    const overwrite = edited.filter(p => this.choices.get(p) === 'overwrite');
    this.setBusy('Writing…');
    try {
      this.review = await api.write(job, { keep, overwrite, ...extra });
      this.written = true;
      this.renderReview();
      void this.ctx.fileBrowser?.model.refresh();
      if (this.review.record) {
        void this.runTests(); // a recorded package proves itself, as the command line's convert does
      }
    } catch (reason) {
      await this.writeRefused(reason, extra);
    }
  }

  private async writeRefused(reason: unknown, extra: { replace_recording?: boolean; accept_changes?: boolean }): Promise<void> {
    const body = reason instanceof HardenError ? reason.body : null;
    if (body?.kind === 'edited' && this.review) {
      // edited while the panel was open: mark them and ask
      const paths = new Set(body.paths ?? []);
      this.review.files = this.review.files.map(f => (paths.has(f.path) ? { ...f, status: 'edited', diff: body.diffs?.[f.path] ?? f.diff } : f));
      this.renderReview();
      this.say(body.message, true);
    } else if (body?.kind === 'recording' && this.review) {
      this.review.drops_recording = body.paths ?? [];
      this.renderReview();
      await this.write({ ...extra, replace_recording: false });
    } else if (body?.kind === 'behaviour') {
      const accept = Dialog.warnButton({ label: 'Accept the new behaviour' });
      const result = await showDialog({
        title: 'The recorded behaviour changed',
        body: new Widget({ node: renderLines(body.message, body.lines ?? []) }),
        buttons: [Dialog.cancelButton(), accept]
      });
      this.renderReview();
      if (result.button.label === accept.label) {
        await this.write({ ...extra, accept_changes: true });
      }
    } else {
      this.renderReview();
      this.say(body?.message ?? String(reason), true);
    }
  }

  private async askRecording(count: number): Promise<'record' | 'replace' | 'cancel'> {
    const out = this.review?.out ?? '';
    const record = Dialog.okButton({ label: 'Run notebook and record' });
    const replace = Dialog.warnButton({ label: `Remove ${count} recorded files` });
    const body = el('div', 'jp-nbharden-dialog');
    body.appendChild(
      el(
        'p',
        undefined,
        `${out}/ holds a test suite recorded from a run of the notebook. This review did not run the notebook: ` +
          `writing it removes ${count} recorded file(s) (the characterization tests and recorded values) and the ` +
          'recorded types and data contracts in the code.'
      )
    );
    body.appendChild(el('p', undefined, 'Run the notebook and record instead, or replace the recorded suite?'));
    const result = await showDialog({
      title: 'Replace the recorded test suite?',
      body: new Widget({ node: body }),
      buttons: [Dialog.cancelButton(), replace, record],
      defaultButton: 2
    });
    return result.button.label === record.label ? 'record' : result.button.label === replace.label ? 'replace' : 'cancel';
  }

  async runTests(): Promise<void> {
    try {
      await this.follow(await api.startTests(this.notebookPath));
    } catch (reason) {
      this.renderError(reason);
    }
  }

  // --- rendering -------------------------------------------------------------------------------------------------

  private header(): HTMLElement {
    this.node.textContent = '';
    this.notice = null;
    const header = el('div', 'jp-nbharden-header');
    const top = header.appendChild(el('div', 'jp-nbharden-top'));
    top.appendChild(el('h2', 'jp-nbharden-title', this.notebookPath));
    const toggle = top.appendChild(el('label', 'jp-nbharden-record-toggle'));
    const box = toggle.appendChild(el('input', 'jp-nbharden-record'));
    box.type = 'checkbox';
    box.checked = !!this.record;
    box.disabled = this.running !== null;
    box.onchange = () => {
      this.record = box.checked;
      void this.refresh();
    };
    toggle.appendChild(document.createTextNode(' Run notebook and record'));
    toggle.title =
      'Run the notebook (twice) to record what every step reads and makes: characterization tests, recorded ' +
      'types and data contracts. Without it, nbharden only reads the code.';
    this.node.appendChild(header);
    return header;
  }

  private say(message: string, warn = false): void {
    if (!this.notice) {
      const header = this.node.querySelector('.jp-nbharden-header') ?? this.node;
      this.notice = header.appendChild(el('div', 'jp-nbharden-notice'));
    }
    this.notice.className = `jp-nbharden-notice${warn ? ' jp-nbharden-notice-warn' : ''}`;
    this.notice.textContent = message;
  }

  private setBusy(message: string): void {
    this.node.querySelectorAll<HTMLButtonElement>('.jp-nbharden-actions button').forEach(b => (b.disabled = true));
    this.say(message);
  }

  /** The panel as a reloaded page restores it: nothing runs until asked (a review may run the notebook). */
  restored(): void {
    this.renderIdle('Review this notebook to see what nbharden would write.');
  }

  private renderIdle(message: string): void {
    const header = this.header();
    header.appendChild(el('p', 'jp-nbharden-summary jp-nbharden-idle', message));
    const actions = header.appendChild(el('div', 'jp-nbharden-actions'));
    actions.appendChild(button('Review again', 'jp-mod-accept jp-nbharden-refresh', () => void this.refresh()));
  }

  /** The progress box; ``job`` null while the job is being started. */
  private renderProgress(job: IJob | null, stage?: string): void {
    const header = this.header();
    const box = header.appendChild(el('div', 'jp-nbharden-progress'));
    box.setAttribute('role', 'status');
    box.setAttribute('data-state', 'running');
    const line = box.appendChild(el('div', 'jp-nbharden-progress-line'));
    line.appendChild(el('div', 'jp-nbharden-spinner'));
    line.appendChild(el('span', 'jp-nbharden-stage', stage ?? STAGES[job?.stage ?? 'queued'] ?? job?.stage ?? ''));
    line.appendChild(el('span', 'jp-nbharden-elapsed', '0.0 s'));
    const bar = box.appendChild(el('progress', 'jp-nbharden-bar'));
    bar.max = 1;
    bar.removeAttribute('value');
    box.appendChild(el('div', 'jp-nbharden-cell-line'));
    box.appendChild(button('Cancel', 'jp-mod-warn jp-nbharden-cancel', () => void this.cancel()));
    const started = performance.now() - (job ? job.elapsed * 1000 : 0);
    window.clearInterval(this.timer);
    const elapsed = box.querySelector('.jp-nbharden-elapsed') as HTMLElement;
    this.timer = window.setInterval(() => {
      elapsed.textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
    }, 100);
  }

  private updateStage(job: IJob): void {
    const stage = this.node.querySelector('.jp-nbharden-stage');
    if (stage && !(job.stage === 'record' && job.progress)) {
      stage.textContent = STAGES[job.stage] ?? job.stage;
    }
  }

  /** One cell of a recorded run has started. */
  private showCell(job: IJob, p: IProgress): void {
    const box = this.node.querySelector('.jp-nbharden-progress');
    if (!box) {
      return;
    }
    box.setAttribute('data-run', String(p.run));
    box.setAttribute('data-position', String(p.position));
    box.setAttribute('data-total', String(p.total));
    const stage = box.querySelector('.jp-nbharden-stage');
    if (stage) {
      stage.textContent = `Running the notebook: run ${p.run} of ${p.runs}`;
    }
    const bar = box.querySelector('progress') as HTMLProgressElement;
    bar.value = ((p.run - 1) * p.total + p.position - 1) / Math.max(1, p.runs * p.total);
    const cell = box.querySelector('.jp-nbharden-cell-line') as HTMLElement;
    cell.textContent = `Cell ${p.position} of ${p.total} · ${this.label(p.cell)} · ${p.elapsed.toFixed(1)} s into this run`;
  }

  private renderError(reason: unknown): void {
    window.clearInterval(this.timer);
    const header = this.header();
    const body: IErrorBody = reason instanceof HardenError ? reason.body : { message: String(reason) };
    const box = header.appendChild(el('div', 'jp-nbharden-error'));
    box.setAttribute('role', 'alert');
    box.setAttribute('data-kind', body.kind ?? '');
    const heading =
      body.kind === 'execution'
        ? 'The notebook failed when it was run'
        : body.kind === 'input'
          ? 'nbharden cannot read this notebook'
          : 'nbharden failed';
    box.appendChild(el('h3', undefined, heading));
    box.appendChild(el('pre', 'jp-nbharden-error-message', body.message));
    if (typeof body.cell === 'number') {
      const cell = body.cell;
      const go = button(`Go to ${this.label(cell)}`, 'jp-mod-accept jp-nbharden-goto', () => {
        void goToCell(this.ctx, this.notebookPath, cell, body.line ?? null, body.col ?? null);
      });
      go.setAttribute('data-cell', String(cell));
      box.appendChild(go);
    }
    box.appendChild(button('Try again', 'jp-nbharden-refresh', () => void this.refresh()));
  }

  private renderReview(): void {
    const review = this.review;
    if (!review) {
      return;
    }
    const header = this.header();
    const pending = review.files.filter(f => f.status !== 'unchanged' && !f.gone && f.path !== '.nbharden.json');
    const summary = header.appendChild(el('p', 'jp-nbharden-summary'));
    if (this.written) {
      const wrote = review.written?.length ?? 0;
      const removed = review.removed?.length ?? 0;
      const kept = review.kept?.length ?? 0;
      summary.textContent =
        `Wrote ${wrote} file(s), removed ${removed}${kept ? `, kept ${kept} of your edits` : ''} in ${review.out}/.`;
      summary.setAttribute('data-written', String(wrote));
      summary.setAttribute('data-removed', String(removed));
      summary.classList.add('jp-nbharden-written');
    } else {
      summary.textContent =
        `${review.record ? 'Recorded review' : 'Review (the notebook was not run)'}: ${pending.length} file(s) to ` +
        `write in ${review.out}/, ${review.findings.length} finding(s).`;
    }
    const actions = header.appendChild(el('div', 'jp-nbharden-actions'));
    const write = actions.appendChild(button('Write files', 'jp-mod-accept jp-nbharden-write', () => void this.write()));
    write.disabled = pending.length === 0 || Object.keys(review.blocked ?? {}).length > 0;
    actions.appendChild(button('Review again', 'jp-nbharden-refresh', () => void this.refresh()));
    if (this.written || review.files.some(f => f.path.startsWith('tests/') && f.status === 'unchanged')) {
      actions.appendChild(button('Run tests', 'jp-nbharden-run-tests', () => void this.runTests()));
    }
    this.renderWarnings(header, review);
    if (this.tests) {
      this.node.appendChild(renderTests(this.tests));
    }
    this.node.appendChild(renderFindings(review.findings, this.label, f => void this.goTo(f), this.ctx.languages));
    this.node.appendChild(
      renderFiles({
        files: review.files,
        out: review.out,
        jobId: this.reviewJob,
        languages: this.ctx.languages,
        open: path => void this.ctx.app.commands.execute('docmanager:open', { path }),
        choices: this.choices,
        onChoice: () => undefined,
        written: this.written
      })
    );
    const notebook = openNotebook(this.ctx, this.notebookPath);
    if (notebook) {
      showFindings(notebook, review.findings, this.label);
    }
  }

  private renderWarnings(header: HTMLElement, review: IReview): void {
    const blocked = Object.entries(review.blocked ?? {});
    if (blocked.length) {
      const warn = header.appendChild(el('div', 'jp-nbharden-error'));
      warn.textContent = `Cannot write: ${blocked.map(([p, why]) => `${p} (${why})`).join('; ')}`;
    }
    if (review.drops_recording.length && !this.written) {
      const warn = header.appendChild(el('div', 'jp-nbharden-notice jp-nbharden-notice-warn jp-nbharden-drops'));
      warn.setAttribute('data-count', String(review.drops_recording.length));
      warn.textContent =
        `${review.out}/ holds a recorded test suite. This review did not run the notebook: writing it would remove ` +
        `${review.drops_recording.length} recorded file(s). Turn on “Run notebook and record” to keep a recorded suite.`;
    }
  }

  private async goTo(f: IFinding): Promise<void> {
    if (f.cell !== null) {
      await goToCell(this.ctx, this.notebookPath, f.cell, f.line, f.col);
    }
  }
}

function renderLines(message: string, lines: string[]): HTMLElement {
  const body = el('div', 'jp-nbharden-dialog');
  body.appendChild(el('p', undefined, message));
  body.appendChild(el('pre', 'jp-nbharden-behaviour', lines.join('\n')));
  return body;
}

function renderTests(run: ITestRun): HTMLElement {
  const section = el('section', 'jp-nbharden-tests');
  section.setAttribute('data-returncode', String(run.returncode));
  const ok = run.returncode === 0;
  section.appendChild(el('h3', undefined, `Tests: ${run.summary || (ok ? 'passed' : 'failed')}`));
  const list = section.appendChild(el('ul', 'jp-nbharden-test-list'));
  const order = { failed: 0, error: 0, xpassed: 1, skipped: 2, xfailed: 2, passed: 3 };
  for (const test of [...run.cases].sort((a, b) => order[a.outcome] - order[b.outcome])) {
    const item = list.appendChild(el('li', `jp-nbharden-test jp-nbharden-test-${test.outcome}`));
    item.setAttribute('data-outcome', test.outcome);
    item.appendChild(el('span', 'jp-nbharden-test-outcome', test.outcome));
    item.appendChild(el('span', 'jp-nbharden-test-id', test.id));
    if (test.message) {
      item.appendChild(el('span', 'jp-nbharden-test-message', test.message));
    }
  }
  return section;
}
