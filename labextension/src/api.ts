/**
 * The server extension's HTTP API (docs/lab.md): jobs (start, poll, cancel, write), the diff view's file
 * texts, the output folder's status and the rules. Every request goes through ServerConnection (token, XSRF).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export type FileStatus = 'new' | 'changed' | 'unchanged' | 'edited' | 'removed';

/** One generated file in a change set. */
export interface IFileChange {
  path: string;
  status: FileStatus;
  diff: string;
  /** After a write: a removed file that is gone from the disk. */
  gone?: boolean;
}

/** One finding, located by cell (from 1, as nbharden counts them) and line. */
export interface IFinding {
  code: string;
  message: string;
  path: string;
  cell: number | null;
  line: number | null;
  col: number | null;
  severity: 'error' | 'warning' | 'info';
  fix: string;
  applied: boolean;
}

/** A review job's result: the change set, and after a write what was written. */
export interface IReview {
  notebook: string;
  out: string;
  record: boolean;
  files: IFileChange[];
  findings: IFinding[];
  tests: Record<string, unknown> | null;
  blocked: Record<string, string>;
  drops_recording: string[];
  behaviour: Record<string, unknown> | null;
  written: string[] | null;
  removed?: string[];
  kept?: string[];
}

/** One test of the generated suite. */
export interface ITestCase {
  id: string;
  outcome: 'passed' | 'failed' | 'error' | 'skipped' | 'xfailed' | 'xpassed';
  message: string;
}

export interface ITestRun {
  returncode: number;
  summary: string;
  cases: ITestCase[];
  [count: string]: unknown;
}

/** Per-cell progress of a recorded run. */
export interface IProgress {
  run: number;
  runs: number;
  cell: number;
  position: number;
  total: number;
  elapsed: number;
}

/** An error answer: the one-line message plus what the panel needs to act on it. */
export interface IErrorBody {
  message: string;
  kind?: string;
  cell?: number | null;
  line?: number | null;
  col?: number | null;
  paths?: string[];
  diffs?: Record<string, string>;
  lines?: string[];
}

export interface IJob {
  id: string;
  kind: 'review' | 'tests';
  state: 'running' | 'done' | 'failed' | 'cancelled';
  notebook: string;
  out: string;
  record: boolean;
  stage: string;
  progress: IProgress | null;
  /** Every cell start since the ``since`` the poll asked for, in order. */
  events: IProgress[];
  version: number;
  elapsed: number;
  result: (IReview & { tests?: ITestRun }) | null;
  error: IErrorBody | null;
}

export interface IStatus {
  notebook: string;
  out: string;
  exists: boolean;
  recorded: boolean;
  running: string[];
}

export interface IFileView {
  path: string;
  status: FileStatus;
  old: string | null;
  new: string | null;
  too_large: boolean;
}

export interface IRule {
  code: string;
  name: string;
  summary: string;
  why: string;
  category: string;
  severity: string;
  fix: string;
  example: string;
  after: string;
  fix_note: string;
}

/** A failed request, with the server's JSON body when it sent one. */
export class HardenError extends Error {
  constructor(
    readonly status: number,
    readonly body: IErrorBody
  ) {
    super(body.message);
  }
}

async function request<T>(
  parts: string[],
  init: RequestInit = {},
  query: Record<string, string> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let url = URLExt.join(settings.baseUrl, 'nbharden', ...parts);
  const search = new URLSearchParams(query).toString();
  if (search) {
    url += `?${search}`;
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (reason) {
    throw new HardenError(0, { message: `cannot reach the Jupyter server: ${String(reason)}` });
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
  return data as T;
}

const post = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });

export const api = {
  status: (path: string) => request<IStatus>(['status'], {}, { path }),
  startReview: (path: string, record: boolean) =>
    request<IJob>(['jobs'], post({ kind: 'review', path, record })),
  startTests: (path: string) => request<IJob>(['jobs'], post({ kind: 'tests', path })),
  /** The job once it changed after ``since`` (the server waits up to a few seconds for that). */
  poll: (id: string, since: number) =>
    request<IJob>(['jobs', id], {}, { since: String(since), wait: '1' }),
  cancel: (id: string) => request<IJob>(['jobs', id], { method: 'DELETE' }),
  write: (
    id: string,
    choice: { keep?: string[]; overwrite?: string[]; replace_recording?: boolean; accept_changes?: boolean }
  ) => request<IReview>(['jobs', id, 'write'], post(choice)),
  file: (id: string, path: string) => request<IFileView>(['jobs', id, 'file'], {}, { path }),
  rules: () => request<{ rules: IRule[] }>(['rules'])
};
