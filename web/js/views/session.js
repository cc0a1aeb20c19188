// One development session as a timeline (`devtrace session show`): turns with their prompts
// and tokens, the agent's replies, every tool call with its outcome, edits as diffs, commands
// with their output, notes, sub-agents (indented), the findings inline on the entry where they
// became evident, and links to the traces of the `devtrace run` executions a command ran.
//
// Everything shown here was recorded from a transcript: it is data, set as text, never as
// markup. Long outputs and diffs show their first lines with a button for the rest; an output
// cut when it was stored is read whole from its blob (/api/v1/blobs/{hash}) on demand.
//
// URL: /sessions/ID, ?entry=SPAN to open at an entry, ?finding=N to show finding N's evidence.

import {get} from '../api.js';
import {h, s as svg, duration, time, note, plural, tokens, bytes, count, dollars, traceHref, sessionHref, compareSessionsHref, debounce, escaped, escapedBlock} from '../dom.js';
import {cost, lines} from './sessions.js';
import {qaSection} from './session_qa.js';

/** Lines shown before "Show all" (outputs, diffs, prompts, replies). */
const SHOWN = {output: 10, diff: 12, text: 6, reply: 4};
const MARKS = {turn: '▶', agent: '◆', message: '»'};
/** Entries built before the view shows; the rest follow in batches between frames, so a
 * session of thousands of tool calls opens as fast as a short one. */
const FIRST_ENTRIES = 120;
const BATCH = 100;

export async function render(main, {params, query, navigate}) {
  const id = params[0];
  main.append(note('Loading the session…'));
  let overview;
  try {
    overview = await get(`sessions/${encodeURIComponent(id)}/overview`);
  } catch (error) {
    main.replaceChildren(h('h1', {}, 'Session'), note(error.message, 'error'),
      h('p', {}, h('a', {href: '/sessions'}, 'Back to the sessions')));
    return;
  }
  const view = new SessionView(overview, navigate);
  main.replaceChildren(view.element);
  view.start(query);
  return () => view.stop();
}

class SessionView {
  constructor(overview, navigate) {
    this.o = overview;
    this.navigate = navigate;
    this.s = overview.session;
    this.origin = overview.timeline.reduce((min, e) => Math.min(min, e.start_unix_nano), this.s.start_unix_nano);
    // Where each finding is shown: the entry of its last piece of evidence.
    this.anchorOf = new Map();
    overview.timeline.forEach((e) => e.findings.forEach((f) => this.anchorOf.set(f, e.span_id)));
    this.entries = [];
    this.bySpan = new Map();
    this.indexOf = new Map(overview.timeline.map((e, i) => [e.span_id, i]));
    // Sub-agents by span id: each step names the sub-agent it belongs to (`subagent`).
    this.subagents = new Map(overview.timeline.filter((e) => e.kind === 'agent').map((e) => [e.span_id, e.label]));
    this.timer = null;
    this.current = null;
    this.build();
  }

  build() {
    const {o, s} = this;
    const r = o.recorded;
    const title = s.title ? escaped(s.title) : '(untitled session)';
    this.filter = h('input', {type: 'search', 'data-search': true, class: 'timeline-filter', placeholder: 'Filter: tool, file, command, text…',
      'aria-label': 'Filter the timeline'});
    this.onlyProblems = h('input', {type: 'checkbox', name: 'problems'});
    this.counter = h('span', {class: 'muted', role: 'status'});
    this.list = h('ol', {class: 'timeline', tabindex: '0', 'aria-label': `Timeline of ${title}: ${plural(o.timeline.length, 'entry', 'entries')}`});
    this.renderThrough(FIRST_ENTRIES - 1);
    this.element = h('section', {class: 'session-view'},
      h('header', {class: 'session-head'},
        h('p', {class: 'crumbs'}, h('a', {href: '/sessions'}, 'Sessions'), ' / ', h('span', {class: 'mono'}, s.trace_id.slice(0, 8))),
        h('h1', {}, title),
        h('dl', {class: 'facts session-facts'},
          r?.developer ? fact('Recorded by', escaped(r.developer))
            : fact(r ? 'Recorder' : 'Agent', escaped(s.agent + (o.agent_version ? ` ${o.agent_version}` : ''))),
          fact('Project', h('a', {href: `/sessions?repo=${encodeURIComponent(s.project)}`}, escaped(s.project))),
          o.repository && o.repository !== s.project ? fact('Repository', escaped(o.repository)) : null,
          o.git_branch ? fact('Branch', escaped(o.git_branch)) : null,
          fact('Started', time(s.start_unix_nano)),
          fact('Duration', duration(s.duration_ns)),
          // A person's recorded session has no turns, tool calls or tokens: its own numbers instead.
          ...(r ? this.recordedFacts() : []),
          !r || s.turns ? fact('Turns', s.turns.toLocaleString()) : null,
          !r || s.tool_calls ? fact('Tool calls', s.tool_calls.toLocaleString()) : null,
          !r || s.subagents ? fact('Sub-agents', s.subagents.toLocaleString()) : null,
          !r || s.input_tokens || s.output_tokens ? fact('Tokens', `${tokens(s.input_tokens)} in (${tokens(s.cache_read_tokens)} from cache), ${tokens(s.output_tokens)} out`) : null,
          fact('Errors', s.errors ? h('span', {class: 'error-text'}, s.errors.toLocaleString()) : '0'),
          fact('Findings', String(o.findings.length)),
          s.usage?.cost_usd !== undefined ? fact('Cost (agent-reported)', cost(s.usage.cost_usd)) : null,
          lines(s.usage) ? fact('Lines changed', lines(s.usage)) : null,
          o.sources?.length ? fact('Recorded from', o.sources.join(', ')) : null,
          fact('Session id', h('span', {class: 'mono'}, s.session_id))),
        o.lacks?.length ? h('p', {class: 'note muted lacks'},
          `From the agent's own telemetry, which leaves out ${o.lacks.join(', ')}`
          + (s.agent === 'claude-code' || s.agent === 'codex' ? `; importing its transcript (devtrace import ${s.agent}) fills them in.` : '.')) : null,
        h('p', {class: 'links'},
          h('a', {href: traceHref(s.trace_id)}, 'Open as a trace (waterfall)'), ' · ',
          h('a', {href: `/api/v1/sessions/${s.trace_id}/overview`, target: '_blank', rel: 'noopener'}, 'JSON'), ' · ',
          compareForm(s.trace_id, this.navigate))),
      this.body());
    this.filter.addEventListener('input', debounce(() => this.applyFilter(), 150));
    this.filter.addEventListener('keydown', (e) => { if (e.key === 'Escape') { this.filter.value = ''; this.applyFilter(); this.list.focus(); } });
    this.onlyProblems.addEventListener('change', () => this.applyFilter());
    this.list.addEventListener('keydown', (e) => this.key(e));
    this.list.addEventListener('click', (e) => {
      const li = e.target.closest('li.entry');
      if (li && !e.target.closest('a, button, summary, pre')) this.select(li, {focus: false});
    });
    this.counter.textContent = `${plural(o.timeline.length, 'entry', 'entries')}`;
  }

  /** The timeline first (beside the rest on a wide screen, above it on a narrow one), so it
   * starts near the top of the page; the other sections are a jump away from the header. */
  body() {
    const {o, s} = this;
    const sections = [
      s.tokens?.requests ? ['Tokens and cost', tokensSection(s.tokens, o.requests)] : null,
      o.recorded ? ['What was done', this.recordedSection()] : null,
      o.linked_runs.length ? [`Runs (${o.linked_runs.length})`, this.runsSection()] : null,
      o.findings.length ? [`Findings (${o.findings.length})`, this.findingsSection()] : null,
      ['QA', this.qa = qaSection(s.trace_id)],
    ].filter(Boolean);
    sections.forEach(([, section], i) => { section.id ||= `part-${i + 1}`; });
    return [
      h('p', {class: 'jumps'}, h('a', {href: '#timeline'}, 'Timeline'),
        sections.map(([label, section]) => [' · ', h('a', {href: `#${section.id}`}, label)])),
      h('div', {class: 'session-body'},
        h('section', {class: 'session-timeline', id: 'timeline'},
          h('h2', {}, 'Timeline'),
          h('div', {class: 'timeline-tools'}, this.filter,
            h('label', {class: 'check'}, this.onlyProblems, ' failures and findings only'), this.counter,
            h('span', {class: 'muted small'}, 'j/k or ↑/↓ move · Enter shows all of an entry · / filters')),
          this.list),
        h('aside', {class: 'session-aside'}, sections.map(([, section]) => section))),
    ];
  }

  /** The header facts of a recorded session: its commands, edits and notes, where it began. */
  recordedFacts() {
    const r = this.o.recorded;
    const commands = this.o.timeline.filter((e) => e.action === 'command');
    const failedCommands = commands.filter(failed).length;
    const edits = this.o.timeline.filter((e) => e.action === 'edit');
    const files = new Set(edits.map((e) => e.path).filter(Boolean));
    const notes = this.o.timeline.filter((e) => e.action === 'note').length;
    return [
      fact('Commands', failedCommands ? [`${commands.length.toLocaleString()} (`, h('span', {class: 'error-text'}, `${failedCommands} failed`), ')']
        : commands.length.toLocaleString()),
      fact('Edits', `${edits.length.toLocaleString()} in ${plural(files.size, 'file')}`),
      fact('Notes', notes.toLocaleString()),
      r.commit ? fact('Start commit', h('span', {class: 'mono', title: escaped(r.commit)}, escaped(r.commit.slice(0, 12)))) : null,
      r.test_command ? fact('Test command', h('code', {}, escaped(r.test_command))) : null,
    ];
  }

  /** What a person's recorded session did and left: the task, the commands with their exit
   * codes, the files edited, the notes, the final patch and the test results. */
  recordedSection() {
    const r = this.o.recorded;
    const timeline = this.o.timeline;
    const link = (e, ...content) => h('a', {href: sessionHref(this.s.trace_id, e.span_id), dataset: {entry: e.span_id}}, ...content);
    const exit = (e) => e.exit_code == null ? h('span', {class: 'badge'}, 'exit ?')
      : e.exit_code === 0 ? h('span', {class: 'badge ok'}, 'exit 0') : h('span', {class: 'badge error'}, `exit ${e.exit_code}`);
    const commands = timeline.filter((e) => e.action === 'command');
    const edited = new Map();
    for (const e of timeline) {
      if (e.action !== 'edit' || !e.path) continue;
      const file = edited.get(e.path) || {first: e, count: 0};
      file.count++;
      edited.set(e.path, file);
    }
    const notes = timeline.filter((e) => e.action === 'note');
    const LISTED = 50;
    const more = (n) => n > LISTED ? h('li', {class: 'muted'}, `and ${(n - LISTED).toLocaleString()} more in the timeline`) : null;
    const tests = r.test_results;
    return h('section', {class: 'recorded-session'},
      r.task ? h('section', {class: 'recorded-task'}, h('h2', {}, 'Task'), clipped(r.task, SHOWN.text, {label: 'task', className: 'note-text'})) : null,
      h('div', {class: 'recorded-lists'},
        h('section', {class: 'recorded-commands'}, h('h2', {}, `Commands run (${commands.length})`),
          commands.length ? h('ol', {}, commands.slice(0, LISTED).map((e) => h('li', {class: failed(e) ? 'failed' : ''},
            exit(e), ' ', link(e, h('code', {class: 'command'}, escaped(firstLine(e.command || e.label))))
            , e.duration_ns > 0 ? h('span', {class: 'muted'}, ` · ${duration(e.duration_ns)}`) : null)), more(commands.length))
            : h('p', {class: 'muted'}, 'No command was recorded (the shell integration records them: devtrace record shell-init).')),
        h('section', {class: 'recorded-files'}, h('h2', {}, `Files edited (${edited.size})`),
          edited.size ? h('ul', {}, [...edited].slice(0, LISTED).map(([path, {first, count}]) => h('li', {},
            link(first, h('span', {class: 'path'}, escaped(path))), count > 1 ? h('span', {class: 'muted'}, ` · ${count} saves`) : null)), more(edited.size))
            : h('p', {class: 'muted'}, 'No edit was recorded.')),
        notes.length ? h('section', {class: 'recorded-notes'}, h('h2', {}, `Notes (${notes.length})`),
          h('ul', {}, notes.slice(0, LISTED).map((e) => h('li', {},
            link(e, h('span', {class: 'note-line'}, escaped(firstLine(e.text || e.label)))),
            e.tags?.length ? [' ', ...e.tags.map((t) => h('span', {class: 'badge'}, escaped(t)))] : null)), more(notes.length))) : null),
      h('section', {class: 'recorded-tests'}, h('h2', {}, 'Test results'),
        tests ? h('p', {class: 'tests-line'},
          tests.exit_code === 0 ? h('span', {class: 'badge ok'}, 'exit 0') : h('span', {class: 'badge error'}, tests.exit_code == null ? 'exit ?' : `exit ${tests.exit_code}`), ' ',
          tests.runner ? h('span', {class: 'tests-counts'}, `${tests.passed} passed, `, h('span', {class: tests.failed ? 'error-text' : ''}, `${tests.failed} failed`), `, ${tests.skipped} skipped`)
            : h('span', {class: 'muted'}, 'no test summary recognised'),
          tests.runner ? h('span', {class: 'muted'}, ` · ${escaped(tests.runner)}`) : null,
          tests.command ? [' · ', h('code', {}, escaped(tests.command))] : null,
          tests.duration_ms != null ? h('span', {class: 'muted'}, ` · ${duration(tests.duration_ms * 1e6)}`) : null)
          : h('p', {class: 'muted'}, r.test_command ? 'The tests were not run when the recording stopped.'
            : 'No test command was given (devtrace record start --test-command "…" runs it at stop).')),
      h('section', {class: 'recorded-patch'}, h('h2', {}, 'Final patch'),
        r.final_patch != null ? [
          h('p', {class: 'muted'}, `${plural(r.patch_files.length, 'file')} · +${r.lines_added} −${r.lines_removed}`,
            r.commit ? ` · from ${r.commit.slice(0, 12)} to the working tree at the end` : '',
            r.final_patch_cut ? ` · the first ${bytes(r.final_patch.length)} of ${bytes(r.final_patch_bytes)} shown (devtrace export ${this.s.trace_id.slice(0, 8)} --format trace-1.0.0 has all of it)` : ''),
          r.patch_files.length ? h('ul', {class: 'patch-files'}, r.patch_files.map((f) => h('li', {}, h('span', {class: 'path'}, escaped(f))))) : null,
          diffBlock(r.final_patch, 40)]
          : h('p', {class: 'muted'}, 'No final patch was recorded.')));
  }

  runsSection() {
    return h('section', {class: 'linked-runs'}, h('h2', {}, `Runs made in this session (${this.o.linked_runs.length})`),
      h('ul', {}, this.o.linked_runs.map((r) => h('li', {},
        h('a', {href: traceHref(r.trace_id), class: 'mono', 'aria-label': `run trace of ${r.command}`}, `${r.trace_id.slice(0, 12)}…`), ' ',
        h('code', {}, r.command), ' · ',
        r.exit_code === 0 ? 'exit 0' : h('span', {class: 'badge error'}, r.exit_code == null ? 'exit ?' : `exit ${r.exit_code}`),
        ` · ${duration(r.duration_ns)} · `,
        h('a', {href: sessionHref(this.s.trace_id, r.tool_span_id), dataset: {entry: r.tool_span_id}}, 'the command')))));
  }

  findingsSection() {
    return h('section', {class: 'session-findings'}, h('h2', {}, `Findings (${this.o.findings.length})`),
      h('ol', {class: 'findings'}, this.o.findings.map((f, i) => {
        const anchor = this.anchorOf.get(i);
        const spans = f.evidence.flatMap((e) => e.span_ids);
        return h('li', {class: `finding k-${f.kind}`, id: `finding-${i + 1}`},
          h('header', {}, h('span', {class: 'rank'}, `${i + 1}`), h('h3', {}, f.title)),
          h('p', {class: 'meta'}, h('span', {class: 'badge'}, f.kind.replaceAll('_', ' ')),
            f.saving_nanos > 0 ? ` · saving ≈ ${duration(f.saving_nanos * Math.max(1, f.occurrences))}` : '',
            ` · ${plural(spans.length, 'entry', 'entries')} of evidence`),
          h('p', {class: 'recommendation'}, '→ ', f.recommendation),
          h('p', {class: 'evidence'},
            anchor ? h('a', {href: `/sessions/${this.s.trace_id}?finding=${i + 1}`, dataset: {finding: String(i + 1)}}, 'Show in the timeline') : null,
            anchor ? ' · ' : null,
            h('a', {href: `/traces/${this.s.trace_id}?span=${spans[0] || ''}&mark=${spans.join(',')}`}, 'in the trace view')));
      })));
  }

  entryElement(e, index) {
    const failed = e.outcome === 'failed';
    const offset = `+${clock(e.start_unix_nano - this.origin)}`;
    const mark = MARKS[e.kind] || (failed ? '✗' : '✓');
    const what = e.command != null ? h('code', {class: 'command'}, escaped(firstLine(e.command)))
      : e.path != null ? h('span', {class: 'path'}, escaped(e.path))
        : e.kind === 'tool' || e.kind === 'event' ? h('span', {class: 'muted'}, escaped(inputSummary(e.input))) : null;
    const head = h('div', {class: 'entry-head'},
      h('span', {class: 'offset mono', title: time(e.start_unix_nano)}, offset),
      h('span', {class: `mark${failed ? ' error-text' : ''}`, 'aria-label': failed ? 'failed' : e.outcome === 'ok' ? 'ok' : e.kind}, mark),
      e.kind === 'turn' ? h('strong', {class: 'label'}, escaped(e.label))
        : e.kind === 'agent' ? h('strong', {class: 'label'}, `sub-agent: ${escaped(e.label)}`)
          : e.kind === 'message' ? h('div', {class: 'reply-head'}, clipped(e.text || e.label, SHOWN.reply, {label: 'reply', className: 'reply'}))
            : [h('strong', {class: 'label'}, escaped(e.label)), ' ', what],
      e.subagent && this.subagents.has(e.subagent) ? h('a', {href: sessionHref(this.s.trace_id, e.subagent), class: 'badge agent-tag',
        dataset: {entry: e.subagent}, title: `a step of the sub-agent ${escaped(this.subagents.get(e.subagent))}`}, `◆ ${escaped(this.subagents.get(e.subagent))}`) : null,
      h('span', {class: 'entry-meta muted'},
        e.kind === 'turn' ? `${tokens(e.input_tokens)} in, ${tokens(e.output_tokens)} out` : null,
        e.kind !== 'message' && e.kind !== 'turn' && e.duration_ns > 0 ? duration(e.duration_ns) : null,
        e.exit_code != null && e.exit_code !== 0 ? [' ', h('span', {class: 'badge error'}, `exit ${e.exit_code}`)] : null));
    const li = h('li', {class: `entry k-${e.kind}${failed ? ' failed' : ''}${e.findings.length ? ' has-finding' : ''}`,
      tabindex: '-1', dataset: {span: e.span_id, index: String(index)}}, head);
    li.style.setProperty('--depth', String(e.depth));
    if (e.error) li.append(h('p', {class: 'entry-error error-text'}, escaped(e.error)));
    li.append(...this.entryBody(e));
    for (const run of e.linked_runs) {
      const facts = this.o.linked_runs.find((r) => r.trace_id === run);
      li.append(h('p', {class: 'linked-run'}, '↳ ',
        h('a', {href: traceHref(run)}, `run trace ${run.slice(0, 12)}…`),
        facts ? ` · exit ${facts.exit_code ?? '?'} · ${duration(facts.duration_ns)}` : ''));
    }
    if (e.findings.length) {
      li.append(h('ul', {class: 'entry-findings'}, e.findings.map((f) => h('li', {},
        '⚑ ', h('a', {href: `/sessions/${this.s.trace_id}?finding=${f + 1}`, dataset: {finding: String(f + 1)}}, this.o.findings[f]?.title || `finding ${f + 1}`)))));
    }
    // Text the filter matches: what the entry says, not its long outputs.
    li.dataset.text = [e.label, e.command, e.path, e.error, e.kind === 'message' ? '' : e.text].filter(Boolean).join('\n').toLowerCase();
    this.entries.push(li);
    this.bySpan.set(e.span_id, li);
    return li;
  }

  entryBody(e) {
    const parts = [];
    if (e.kind === 'turn' && e.text && e.text.trim() !== e.label) parts.push(clipped(e.text, SHOWN.text, {label: 'prompt', ref: e.text_ref}));
    if (e.kind === 'agent' && e.text) parts.push(lazyDetails('Task given', () => clipped(e.text, SHOWN.text, {label: 'task', ref: e.text_ref})));
    if (e.action === 'note' && e.text) {
      parts.push(clipped(e.text, SHOWN.text, {label: 'note', ref: e.text_ref, className: 'note-text'}));
      if (e.tags?.length) parts.push(h('p', {class: 'tags'}, e.tags.map((t) => h('span', {class: 'badge'}, escaped(t)))));
    }
    if (e.diff) parts.push(diffBlock(e.diff));
    if (e.action === 'command' && e.command) {
      if (e.command.includes('\n')) parts.push(clipped(e.command, SHOWN.text, {label: 'command', className: 'command-text'}));
      if (e.output) parts.push(outputBlock(e));
      else if (e.output_bytes === 0) parts.push(h('p', {class: 'muted small'}, 'no output'));
    } else if (e.input || (e.output && e.action !== 'note')) {
      // Reads, searches, plans, sub-agent tasks: folded, built when opened.
      if (e.input) parts.push(lazyDetails('Input', () => clipped(prettyJson(e.input), SHOWN.text, {label: 'input'})));
      if (e.output) parts.push(lazyDetails(`Output (${bytes(e.output_bytes ?? e.output.length)})`, () => outputBlock(e)));
    }
    return parts;
  }

  /** Builds the entries up to index `last` (those not built yet). */
  renderThrough(last) {
    const timeline = this.o.timeline;
    last = Math.min(last, timeline.length - 1);
    if (last < this.entries.length) return;
    const from = this.entries.length;
    const fragment = document.createDocumentFragment();
    for (let i = from; i <= last; i++) fragment.append(this.entryElement(timeline[i], i));
    this.list.append(fragment);
    if (this.filtering()) this.applyFilter();
  }

  renderAll() {
    clearTimeout(this.timer);
    this.renderThrough(this.o.timeline.length - 1);
  }

  /** The element of the entry of span `id`, built if need be. */
  entry(id) {
    const index = this.indexOf.get(id);
    if (index === undefined) return null;
    this.renderThrough(index);
    return this.bySpan.get(id);
  }

  stop() {
    clearTimeout(this.timer);
    this.qa?.stop();
    document.removeEventListener('keydown', this.firstKey);
  }

  /** j/k and the arrows move along the timeline from the first key press, with nothing
   * focused yet (once the timeline has the focus, its own handler moves). */
  firstKey = (event) => {
    if (!['j', 'k', 'ArrowDown', 'ArrowUp'].includes(event.key) || event.defaultPrevented) return;
    if (event.target !== document.body || event.metaKey || event.ctrlKey || event.altKey) return;
    this.list.focus({preventScroll: true});
    this.key(event);
  };

  /** The page's state as its URL, so it can be shared: the selected entry, the filter, and
   * whether only failures and findings show. */
  keepInUrl() {
    const q = new URLSearchParams();
    if (this.current) q.set('entry', this.current.dataset.span);
    if (this.filter.value.trim()) q.set('q', this.filter.value.trim());
    if (this.onlyProblems.checked) q.set('problems', '1');
    history.replaceState(null, '', `/sessions/${this.s.trace_id}${q.size ? `?${q}` : ''}`);
  }

  start(query) {
    const finding = Number(query.get('finding'));
    const entry = query.get('entry');
    if (query.get('q') || query.get('problems')) {
      this.filter.value = query.get('q') || '';
      this.onlyProblems.checked = query.get('problems') === '1';
      this.applyFilter();
    }
    if (finding) this.showFinding(finding - 1);
    else if (entry) {
      const li = this.entry(entry);
      if (li) this.select(li, {scroll: true});
    }
    const more = () => {
      this.renderThrough(this.entries.length + BATCH - 1);
      this.timer = this.entries.length < this.o.timeline.length ? setTimeout(more, 0) : null;
    };
    if (this.entries.length < this.o.timeline.length) this.timer = setTimeout(more, 0);
    this.started = true;
    document.addEventListener('keydown', this.firstKey);
    this.element.addEventListener('click', (event) => {
      const a = event.target.closest('a[data-finding], a[data-entry]');
      if (!a || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      if (a.dataset.finding) {
        this.showFinding(Number(a.dataset.finding) - 1);
        history.replaceState(null, '', a.getAttribute('href'));
      } else {
        const li = this.entry(a.dataset.entry);
        if (li) this.select(li, {scroll: true});
      }
    });
  }

  /** Marks a finding's evidence and moves to the entry where it became evident. */
  showFinding(index) {
    const f = this.o.findings[index];
    if (!f) return;
    this.renderAll();
    const evidence = new Set(f.evidence.flatMap((e) => e.span_ids));
    for (const li of this.entries) li.classList.toggle('mark', evidence.has(li.dataset.span));
    const anchor = this.bySpan.get(this.anchorOf.get(index));
    if (anchor) this.select(anchor, {scroll: true, keepUrl: true});
  }

  select(li, {scroll = false, focus = true, keepUrl = false} = {}) {
    this.current?.classList.remove('current');
    this.current?.removeAttribute('aria-current');
    this.current = li;
    li.classList.add('current');
    li.setAttribute('aria-current', 'true');
    if (li.hidden) { this.filter.value = ''; this.onlyProblems.checked = false; this.applyFilter(); }
    if (focus) li.focus({preventScroll: true});
    if (scroll) li.scrollIntoView({block: 'center'});
    if (!keepUrl) this.keepInUrl();
  }

  key(event) {
    if (event.key === 'End') this.renderAll();
    else if (['ArrowDown', 'j'].includes(event.key) && this.current === this.entries.at(-1)) this.renderThrough(this.entries.length + BATCH - 1);
    const visible = this.entries.filter((li) => !li.hidden);
    if (!visible.length) return;
    const at = visible.indexOf(this.current);
    const go = (i) => { event.preventDefault(); this.select(visible[Math.max(0, Math.min(visible.length - 1, i))], {scroll: false}); this.current.scrollIntoView({block: 'nearest'}); };
    switch (event.key) {
      case 'ArrowDown': case 'j': return go(at + 1);
      case 'ArrowUp': case 'k': return go(at < 0 ? 0 : at - 1);
      case 'Home': return go(0);
      case 'End': return go(visible.length - 1);
      case 'Enter':
        if (this.current && event.target === this.current) {
          event.preventDefault();
          for (const d of this.current.querySelectorAll('details')) d.open = true;
          for (const b of this.current.querySelectorAll('button.show-all')) b.click();
        }
    }
  }

  filtering() {
    return this.filter.value.trim() !== '' || this.onlyProblems.checked;
  }

  applyFilter() {
    if (this.filtering() && this.entries.length < this.o.timeline.length) return this.renderAll();
    if (this.started) this.keepInUrl();
    const text = this.filter.value.trim().toLowerCase();
    const problems = this.onlyProblems.checked;
    let shown = 0;
    for (const li of this.entries) {
      const keep = (!text || li.dataset.text.includes(text)) &&
        (!problems || li.classList.contains('failed') || li.classList.contains('has-finding'));
      li.hidden = !keep;
      if (keep) shown++;
    }
    this.counter.textContent = shown === this.entries.length ? plural(shown, 'entry', 'entries') : `${shown} of ${plural(this.entries.length, 'entry', 'entries')}`;
  }
}

/** The token kinds, as the CLI and the comparison name them. */
export const TOKEN_KINDS = [
  ['uncached_input', 'Uncached input'],
  ['cache_write', 'Cache write'],
  ['cache_read', 'Cache read'],
  ['output', 'Output'],
];

/** "$0.558 at the built-in prices of 2025-11-24", with the requests left unpriced. */
export function costText(totals) {
  if (totals.cost_usd == null) return 'unknown (no model with a price)';
  const unpriced = totals.unpriced_requests ? ` (${plural(totals.unpriced_requests, 'request')} of unknown models not priced)` : '';
  return `${dollars(totals.cost_usd)}${unpriced} at the ${totals.prices}`;
}

/** Where the session's tokens went (`session show`'s token lines and `--requests`): the
 * kinds and the estimated cost, bars of each main-chain request's context size and cache
 * share (a break marked), and the per-request table, folded. */
function tokensSection(totals, requests) {
  const main = requests.filter((r) => !r.sidechain);
  const breaks = requests.filter((r) => r.cache_break);
  return h('section', {class: 'session-tokens', 'aria-label': 'Tokens and cost'},
    h('h2', {}, 'Tokens and cost'),
    h('dl', {class: 'facts token-kinds'},
      fact('Requests', count(totals.requests)),
      ...TOKEN_KINDS.map(([key, label]) => fact(label, count(totals[key]))),
      fact('Estimated cost', costText(totals))),
    main.length > 1 ? h('div', {class: 'token-bars'},
      bars('Context per request', main.map((r) => r.context), {
        text: (r) => `request ${r.index}: ${count(r.context)} tokens of context`, rows: main, peak: `max ${tokens(Math.max(...main.map((r) => r.context)))}`}),
      bars('Cache share', main.map((r) => r.cache_share), {max: 1,
        text: (r) => `request ${r.index}: ${Math.round(r.cache_share * 100)} % read from the cache`, rows: main,
        peak: `min ${Math.round(Math.min(...main.map((r) => r.cache_share)) * 100)} %`})) : null,
    breaks.length ? h('ul', {class: 'cache-breaks'}, breaks.map((r) => h('li', {},
      h('span', {class: 'badge warn'}, 'cache break'), ` request ${r.index}: ${escaped(r.cache_break.description)}: `,
      `${count(r.cache_break.tokens_rewritten)} tokens re-written`,
      r.cache_break.usd_lost != null ? `, ${dollars(r.cache_break.usd_lost)} lost` : ''))) : null,
    lazyDetails(`Requests (${requests.length})`, () => requestTable(requests)));
}

/** One bar per request, scaled to `max` (the largest value when not given); a request that
 * broke the cache is marked. Each bar says its numbers when pointed at. */
function bars(label, values, {max, text, rows, peak}) {
  const width = Math.max(120, Math.min(720, values.length * 12)), height = 36;
  const top = max ?? Math.max(...values, 1);
  const step = width / values.length;
  const chart = svg('svg', {class: 'bars', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${label}, ${peak}`},
    ...values.map((v, i) => {
      const barHeight = Math.max(1, (v / top) * (height - 2));
      const rect = svg('rect', {x: (i * step + 1).toFixed(1), y: (height - barHeight).toFixed(1), width: Math.max(1, step - 2).toFixed(1),
        height: barHeight.toFixed(1), class: rows[i].cache_break ? 'break' : rows[i].after_compaction ? 'compacted' : ''});
      rect.append(svg('title', {}, text(rows[i])));
      return rect;
    }));
  return h('figure', {class: 'token-bar'}, h('figcaption', {}, `${label} `, h('span', {class: 'muted'}, `(${peak})`)), chart);
}

/** The per-request table (`session show --requests`). */
function requestTable(requests) {
  const columns = ['#', 'Conversation', 'Model', 'Uncached', 'Cache write', 'Cache read', 'Output', 'Cache share', 'Cost', 'Tools', 'Note'];
  return h('table', {class: 'list requests'},
    h('thead', {}, h('tr', {}, columns.map((c, i) => h('th', {class: i >= 3 && i < 10 ? 'num' : ''}, c)))),
    h('tbody', {}, requests.map((r) => h('tr', {class: r.cache_break ? 'cache-break' : ''},
      h('td', {class: 'num'}, String(r.index)),
      h('td', {}, r.sidechain ? 'sub-agent' : 'main'),
      h('td', {class: 'mono'}, r.model ? escaped(r.model) : '–'),
      h('td', {class: 'num'}, count(r.uncached_input)),
      h('td', {class: 'num'}, count(r.cache_write)),
      h('td', {class: 'num'}, count(r.cache_read)),
      h('td', {class: 'num'}, count(r.output)),
      h('td', {class: 'num'}, `${Math.round(r.cache_share * 100)} %`),
      h('td', {class: 'num'}, r.cost_usd == null ? '–' : dollars(r.cost_usd)),
      h('td', {class: 'num'}, String(r.tool_calls)),
      h('td', {}, r.cache_break ? `cache break ${escaped(r.cache_break.description)}: ${count(r.cache_break.tokens_rewritten)} tokens re-written`
        + (r.cache_break.usd_lost != null ? `, ${dollars(r.cache_break.usd_lost)} lost` : '')
        : r.after_compaction ? 'after a compaction (cache written again, expected)' : '')))));
}

/** "Compare with…": another session of the listing, opened side by side with this one. */
function compareForm(traceId, navigate) {
  const select = h('select', {name: 'other', 'aria-label': 'Session to compare with'}, h('option', {value: ''}, 'Compare with…'));
  const form = h('form', {class: 'compare-with'}, select, h('button', {type: 'submit'}, 'Compare'));
  get('sessions', {limit: 50}).then(({sessions}) => {
    select.append(...sessions.filter((o) => o.trace_id !== traceId).map((o) =>
      h('option', {value: o.trace_id}, `${o.trace_id.slice(0, 8)} ${escaped(o.agent)} · ${escaped(o.title || '(untitled)')}`)));
  }).catch(() => { form.hidden = true; });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!select.value) return;
    navigate(compareSessionsHref(traceId, select.value));
  });
  return form;
}

function fact(label, value) {
  return h('div', {class: 'fact'}, h('dt', {}, label), h('dd', {}, value));
}

function failed(e) {
  return e.outcome === 'failed';
}

/** "m:ss" from the session's start, "h:mm:ss" past an hour. */
/** An offset from the session's start: "4:05", "1:02:03". */
export function clock(nanos) {
  const total = Math.max(0, Math.floor(nanos / 1e9));
  const pad = (n) => String(n).padStart(2, '0');
  const h_ = Math.floor(total / 3600), m = Math.floor(total % 3600 / 60), s = total % 60;
  return h_ ? `${h_}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

function firstLine(text) {
  const line = text.split('\n')[0];
  return text.includes('\n') ? `${line} …` : line;
}

/** What a tool was asked, in a few words: the first short string of its input. */
function inputSummary(input) {
  if (!input) return '';
  try {
    const value = JSON.parse(input);
    for (const key of ['pattern', 'url', 'query', 'description', 'path', 'prompt']) {
      if (typeof value[key] === 'string') return shorten(value[key], 100);
    }
    const first = Object.values(value).find((v) => typeof v === 'string');
    return first ? shorten(first, 100) : '';
  } catch {
    return shorten(input, 100);
  }
}

function shorten(text, n) {
  const line = text.split('\n')[0];
  return line.length > n ? `${line.slice(0, n - 1)}…` : line;
}

function prettyJson(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

/** Terminal colour and cursor codes, which recorded outputs carry, are not shown; any other
 * control, bidi or separator character is shown as an escape. */
function plain(text) {
  // eslint-disable-next-line no-control-regex
  return escapedBlock(text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b\][^\x07]*\x07/g, ''));
}

/** A <details> whose content is built the first time it opens. */
function lazyDetails(summary, build, open = false) {
  const details = h('details', {class: 'lazy'}, h('summary', {}, summary));
  const fill = () => { if (details.childElementCount === 1) details.append(build()); };
  details.addEventListener('toggle', () => { if (details.open) fill(); });
  if (open) { details.open = true; fill(); }
  return details;
}

/**
 * Text in a <pre>, its first `shown` lines with a button for the rest. With `ref` (the text
 * was cut when stored), the rest is read from the blob.
 */
function clipped(text, shown, {label = 'text', ref = null, className = 'text'} = {}) {
  const pre = h('pre', {class: className});
  const lines = text.split('\n');
  if (lines.length > shown && lines[lines.length - 1] === '') lines.pop();
  const box = h('div', {class: 'clipped'}, pre);
  if (lines.length <= shown && !ref) {
    pre.textContent = escapedBlock(lines.join('\n'));
    return box;
  }
  pre.textContent = escapedBlock(lines.slice(0, shown).join('\n'));
  const button = h('button', {type: 'button', class: 'secondary small show-all'},
    ref ? `Show all of the ${label}` : `Show all ${lines.length.toLocaleString()} lines of the ${label}`);
  button.addEventListener('click', async () => {
    if (ref) await loadBlob(ref, pre, button);
    else { pre.textContent = escapedBlock(lines.join('\n')); button.remove(); }
  });
  box.append(button);
  return box;
}

/** A command's or tool's output: its first lines, then all of it (from the blob when cut). */
function outputBlock(e) {
  const text = plain(e.output);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const pre = h('pre', {class: `output${failed(e) ? ' failed' : ''}`});
  const box = h('div', {class: 'clipped'}, pre);
  const cut = Boolean(e.output_ref);
  if (lines.length <= SHOWN.output && !cut) {
    pre.textContent = lines.join('\n');
    return box;
  }
  pre.textContent = lines.slice(0, SHOWN.output).join('\n');
  const button = h('button', {type: 'button', class: 'secondary small show-all'},
    cut ? `Show all ${bytes(e.output_bytes)} of output` : `Show all ${lines.length.toLocaleString()} lines of output`);
  button.addEventListener('click', async () => {
    if (cut) await loadBlob(e.output_ref, pre, button);
    else { pre.textContent = lines.join('\n'); button.remove(); }
  });
  box.append(button);
  return box;
}

/** Reads a blob a page (1 MB) at a time into `pre`, as text. */
async function loadBlob(ref, pre, button) {
  button.disabled = true;
  button.textContent = 'Loading…';
  try {
    let page = await get(`blobs/${ref}`);
    pre.textContent = plain(page.text);
    while (page.next_offset != null) {
      const next = page.next_offset;
      button.disabled = false;
      button.textContent = `Load more (${bytes(next)} of ${bytes(page.size)} shown)`;
      await new Promise((resolve) => button.addEventListener('click', resolve, {once: true}));
      button.disabled = true;
      page = await get(`blobs/${ref}`, {offset: next});
      pre.append(plain(page.text));
    }
    button.remove();
  } catch (error) {
    button.disabled = false;
    button.textContent = `Could not load it: ${error.message}`;
  }
}

/** A unified diff, line by line: additions, removals, context and hunk headers. */
function diffBlock(diff, shown = SHOWN.diff) {
  const lines = diff.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const pre = h('pre', {class: 'diff', 'aria-label': `diff: ${lines.filter((l) => l[0] === '+').length} added, ${lines.filter((l) => l[0] === '-').length} removed lines`});
  const draw = (count) => pre.replaceChildren(...lines.slice(0, count).map((line) => h('span', {class: diffClass(line)}, line)));
  const box = h('div', {class: 'clipped'}, pre);
  if (lines.length <= shown) {
    draw(lines.length);
    return box;
  }
  draw(shown);
  const button = h('button', {type: 'button', class: 'secondary small show-all'}, `Show all ${lines.length.toLocaleString()} lines of the diff`);
  button.addEventListener('click', () => { draw(lines.length); button.remove(); });
  box.append(button);
  return box;
}

function diffClass(line) {
  if (line.startsWith('@@') || line.startsWith('***') || line.startsWith('diff ') || line.startsWith('--- ') || line.startsWith('+++ ')) return 'hunk';
  if (line[0] === '+') return 'add';
  if (line[0] === '-') return 'del';
  return 'ctx';
}
